#include "trellis/http/caching.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/codec/http/date.hpp"

namespace trellis::http {
namespace {

using namespace std::chrono_literals;
using std::chrono::seconds;

fields make_fields(std::initializer_list<std::pair<std::string_view, std::string_view>> lines) {
  fields f;
  for (const auto& [name, value] : lines) EXPECT_TRUE(f.add(name, value)) << name;
  return f;
}

cache_control cc_of(std::initializer_list<std::string_view> values) {
  cache_control cc;
  for (std::string_view v : values) parse_cache_control_value(v, cc);
  return cc;
}

cache_control cc_of(std::string_view value) {
  return cc_of({value});
}

// A fixed instant and dates around it.
const cache_time t0 = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").value();

std::string date(cache_time t) {
  return format_http_date(t);
}

std::vector<std::string> names_of(const fields& f) {
  std::vector<std::string> out;
  for (field x : f) out.emplace_back(x.name);
  return out;
}

// --- Cache-Control parsing -------------------------------------------------------------------

TEST(caching_cache_control, parses_every_response_directive) {
  const cache_control cc = cc_of(
      "max-age=60, s-maxage=30, no-cache, no-store, no-transform, must-revalidate, "
      "proxy-revalidate, must-understand, private, public, immutable, "
      "stale-while-revalidate=5, stale-if-error=7");
  EXPECT_EQ(cc.max_age, 60s);
  EXPECT_EQ(cc.s_maxage, 30s);
  EXPECT_TRUE(cc.no_cache);
  EXPECT_TRUE(cc.no_cache_unqualified());
  EXPECT_TRUE(cc.no_store);
  EXPECT_TRUE(cc.no_transform);
  EXPECT_TRUE(cc.must_revalidate);
  EXPECT_TRUE(cc.proxy_revalidate);
  EXPECT_TRUE(cc.must_understand);
  EXPECT_TRUE(cc.private_);
  EXPECT_TRUE(cc.private_unqualified());
  EXPECT_TRUE(cc.public_);
  EXPECT_TRUE(cc.immutable);
  EXPECT_EQ(cc.stale_while_revalidate, 5s);
  EXPECT_EQ(cc.stale_if_error, 7s);
  EXPECT_FALSE(cc.max_age_invalid);
  EXPECT_FALSE(cc.s_maxage_invalid);
  EXPECT_FALSE(cc.only_if_cached);
  EXPECT_FALSE(cc.max_stale);
}

TEST(caching_cache_control, parses_every_request_directive) {
  const cache_control cc = cc_of(
      "max-age=10, max-stale=20, min-fresh=3, no-cache, no-store, no-transform, only-if-cached, "
      "stale-if-error=9");
  EXPECT_EQ(cc.max_age, 10s);
  EXPECT_EQ(cc.max_stale, 20s);
  EXPECT_EQ(cc.min_fresh, 3s);
  EXPECT_TRUE(cc.no_cache);
  EXPECT_TRUE(cc.no_store);
  EXPECT_TRUE(cc.no_transform);
  EXPECT_TRUE(cc.only_if_cached);
  EXPECT_EQ(cc.stale_if_error, 9s);
  EXPECT_FALSE(cc.public_);
}

TEST(caching_cache_control, empty_value_has_nothing) {
  const cache_control cc = cc_of("");
  EXPECT_FALSE(cc.max_age || cc.s_maxage || cc.max_stale || cc.min_fresh || cc.no_cache ||
               cc.no_store || cc.private_ || cc.public_);
}

TEST(caching_cache_control, bare_max_stale_accepts_any_staleness) {
  EXPECT_EQ(cc_of("max-stale").max_stale, max_delta_seconds);
  EXPECT_EQ(cc_of("max-stale, max-stale=5").max_stale, 5s);
  EXPECT_EQ(cc_of("max-stale=abc").max_stale, std::nullopt);
  EXPECT_EQ(cc_of("max-stale=abc, max-stale").max_stale, max_delta_seconds);
  EXPECT_EQ(cc_of("max-stale=9, max-stale=4").max_stale, 4s);
}

TEST(caching_cache_control, names_are_case_insensitive) {
  const cache_control cc =
      cc_of("MaX-AgE=5, No-StOrE, PRIVATE, S-MAXAGE=1, Stale-While-Revalidate=2");
  EXPECT_EQ(cc.max_age, 5s);
  EXPECT_TRUE(cc.no_store);
  EXPECT_TRUE(cc.private_);
  EXPECT_EQ(cc.s_maxage, 1s);
  EXPECT_EQ(cc.stale_while_revalidate, 2s);
}

TEST(caching_cache_control, lines_combine) {
  const fields f = make_fields({{"Cache-Control", "max-age=60"},
                                {"X-Other", "no-store"},
                                {"cache-control", "no-cache"},
                                {"Cache-Control", "public"}});
  const cache_control cc = parse_cache_control(f);
  EXPECT_EQ(cc.max_age, 60s);
  EXPECT_TRUE(cc.no_cache);
  EXPECT_TRUE(cc.public_);
  EXPECT_FALSE(cc.no_store);
}

TEST(caching_cache_control, parsed_lines_and_fields_give_the_same_result) {
  const std::vector<header_field> lines = {{"Cache-Control", "max-age=5"},
                                           {"Cache-Control", "private=\"x\""}};
  const cache_control a = parse_cache_control(std::span<const header_field>(lines));
  const fields owned =
      make_fields({{"Cache-Control", "max-age=5"}, {"Cache-Control", "private=\"x\""}});
  const cache_control b = parse_cache_control(owned);
  EXPECT_EQ(a.max_age, 5s);
  EXPECT_EQ(b.max_age, 5s);
  ASSERT_TRUE(a.private_fields && b.private_fields);
  EXPECT_EQ(*a.private_fields, "x");
  EXPECT_EQ(*b.private_fields, "x");
}

TEST(caching_cache_control, quoted_and_token_arguments_are_both_accepted) {
  EXPECT_EQ(cc_of("max-age=\"3600\"").max_age, 3600s);
  EXPECT_FALSE(cc_of("max-age=\"3600\"").max_age_invalid);
  EXPECT_EQ(cc_of("s-maxage=\"10\"").s_maxage, 10s);
  EXPECT_EQ(cc_of("max-age=003600").max_age, 3600s);
}

TEST(caching_cache_control, quoted_strings_do_not_split_or_leak_directives) {
  EXPECT_EQ(cc_of("extension=\"max-age=3600\", max-age=1").max_age, 1s);
  EXPECT_EQ(cc_of("max-age=1, extension=\"max-age=3600\"").max_age, 1s);
  EXPECT_EQ(cc_of("extension=\"max-age=100\", max-age=\"1\"").max_age, 1s);
  EXPECT_EQ(cc_of("ext=\"a, no-store, b\"").no_store, false);
  EXPECT_EQ(cc_of("ext=\"a \\\" no-store, b\", public").no_store, false);
  EXPECT_TRUE(cc_of("ext=\"a \\\" no-store, b\", public").public_);
  // An unterminated quote swallows the rest of the line.
  EXPECT_FALSE(cc_of("ext=\"abc, no-store").no_store);
}

TEST(caching_cache_control, invalid_max_age_makes_the_response_stale) {
  for (std::string_view v :
       {"max-age=a100", "max-age=100a", "max-age=-100", "max-age=3600.5", "max-age=3600.0",
        "max-age='3600'", "max-age =100", "max-age= 100", "max-age",
        "max-age=", "max-age=\"36\\00\"", "max-age=\"\"", "max-age=1 2"}) {
    const cache_control cc = cc_of(v);
    EXPECT_EQ(cc.max_age, 0s) << v;
    EXPECT_TRUE(cc.max_age_invalid) << v;
  }
  const cache_control s = cc_of("s-maxage=x");
  EXPECT_EQ(s.s_maxage, 0s);
  EXPECT_TRUE(s.s_maxage_invalid);
}

TEST(caching_cache_control, delta_seconds_saturate_at_two_to_the_31) {
  EXPECT_EQ(cc_of("max-age=2147483647").max_age, 2147483647s);
  EXPECT_EQ(cc_of("max-age=2147483648").max_age, max_delta_seconds);
  EXPECT_EQ(cc_of("max-age=99999999999").max_age, max_delta_seconds);
  EXPECT_EQ(cc_of("max-age=99999999999999999999999999999999").max_age, max_delta_seconds);
  EXPECT_FALSE(cc_of("max-age=99999999999").max_age_invalid);
  EXPECT_EQ(cc_of("stale-if-error=99999999999").stale_if_error, max_delta_seconds);
}

TEST(caching_cache_control, conflicting_freshness_duplicates_make_the_response_stale) {
  for (auto values : {std::vector<std::string_view>{"max-age=1800, max-age=1"},
                      std::vector<std::string_view>{"max-age=1, max-age=1800"},
                      std::vector<std::string_view>{"max-age=1800", "max-age=1"},
                      std::vector<std::string_view>{"max-age=1", "max-age=abc"},
                      std::vector<std::string_view>{"max-age=abc", "max-age=1"}}) {
    cache_control cc;
    for (auto v : values) parse_cache_control_value(v, cc);
    EXPECT_EQ(cc.max_age, 0s);
    EXPECT_TRUE(cc.max_age_invalid);
  }
  const cache_control same = cc_of({"max-age=60", "max-age=60"});
  EXPECT_EQ(same.max_age, 60s);
  EXPECT_FALSE(same.max_age_invalid);
  EXPECT_TRUE(cc_of("s-maxage=5, s-maxage=6").s_maxage_invalid);
}

TEST(caching_cache_control, restrictive_readings_of_other_bad_arguments) {
  EXPECT_EQ(cc_of("min-fresh=abc").min_fresh, max_delta_seconds);
  EXPECT_EQ(cc_of("min-fresh=5, min-fresh=50").min_fresh, 50s);
  EXPECT_EQ(cc_of("stale-while-revalidate").stale_while_revalidate, std::nullopt);
  EXPECT_EQ(cc_of("stale-while-revalidate=x").stale_while_revalidate, std::nullopt);
  EXPECT_EQ(cc_of("stale-while-revalidate=30, stale-while-revalidate=10").stale_while_revalidate,
            10s);
  EXPECT_EQ(cc_of("stale-if-error=-1").stale_if_error, std::nullopt);
  EXPECT_EQ(cc_of("stale-if-error=60, stale-if-error=5").stale_if_error, 5s);
  // Directives without arguments count whatever follows them.
  EXPECT_TRUE(cc_of("no-store=1").no_store);
  EXPECT_TRUE(cc_of("must-revalidate junk").must_revalidate);
}

TEST(caching_cache_control, no_cache_and_private_field_lists) {
  const cache_control q = cc_of("no-cache=\"a, b\", private=\"Set-Cookie\"");
  EXPECT_TRUE(q.no_cache);
  EXPECT_FALSE(q.no_cache_unqualified());
  ASSERT_TRUE(q.no_cache_fields);
  EXPECT_EQ(*q.no_cache_fields, "a, b");
  EXPECT_TRUE(q.private_);
  EXPECT_FALSE(q.private_unqualified());
  EXPECT_EQ(*q.private_fields, "Set-Cookie");

  EXPECT_EQ(cc_of("no-cache=a").no_cache_fields, std::optional<std::string_view>("a"));
  EXPECT_EQ(cc_of("private=x").private_fields, std::optional<std::string_view>("x"));
  // Empty or malformed lists are unqualified, the restrictive reading.
  for (std::string_view v : {"no-cache=\"\"", "no-cache=\" , \"", "no-cache=\"a b\"",
                             "no-cache=\"a\\\"b\"", "no-cache=\"a", "no-cache= a"}) {
    const cache_control cc = cc_of(v);
    EXPECT_TRUE(cc.no_cache) << v;
    EXPECT_TRUE(cc.no_cache_unqualified()) << v;
  }
  // A bare occurrence, or two lists that differ, unqualify it.
  EXPECT_TRUE(cc_of("no-cache=\"a\", no-cache").no_cache_unqualified());
  EXPECT_TRUE(cc_of("no-cache, no-cache=\"a\"").no_cache_unqualified());
  EXPECT_TRUE(cc_of({"private=\"a\"", "private=\"b\""}).private_unqualified());
  EXPECT_EQ(cc_of({"private=\"a\"", "private=\"a\""}).private_fields,
            std::optional<std::string_view>("a"));
}

TEST(caching_cache_control, unknown_directives_and_empty_members_are_ignored) {
  const cache_control cc = cc_of(", ,foobar, max-age=5,, ext=\"x\",=junk, public ,");
  EXPECT_EQ(cc.max_age, 5s);
  EXPECT_TRUE(cc.public_);
  EXPECT_FALSE(cc.no_store);
}

TEST(caching_cache_control, pragma_no_cache_only_without_cache_control) {
  EXPECT_TRUE(parse_cache_control(make_fields({{"Pragma", "no-cache"}})).pragma_no_cache);
  EXPECT_TRUE(parse_cache_control(make_fields({{"Pragma", "x, No-Cache"}})).pragma_no_cache);
  EXPECT_FALSE(
      parse_cache_control(make_fields({{"Pragma", "no-cache"}, {"Cache-Control", "max-age=5"}}))
          .pragma_no_cache);
  EXPECT_FALSE(
      parse_cache_control(make_fields({{"Pragma", "unrecognised-extension"}})).pragma_no_cache);
  // Pragma is never Cache-Control itself.
  EXPECT_FALSE(parse_cache_control(make_fields({{"Pragma", "no-cache"}})).no_cache);
}

TEST(caching_cache_control, format_round_trips) {
  const cache_control cc = cc_of(
      "max-age=60, s-maxage=30, max-stale, min-fresh=3, stale-while-revalidate=5, "
      "stale-if-error=7, no-cache=\"a, b\", no-store, no-transform, only-if-cached, "
      "must-revalidate, proxy-revalidate, must-understand, private, public, immutable");
  const std::string text = format_cache_control(cc);
  EXPECT_EQ(text,
            "max-age=60, s-maxage=30, max-stale, min-fresh=3, stale-while-revalidate=5, "
            "stale-if-error=7, no-cache=\"a, b\", no-store, no-transform, only-if-cached, "
            "must-revalidate, proxy-revalidate, must-understand, private, public, immutable");
  const cache_control again = cc_of(text);
  EXPECT_EQ(format_cache_control(again), text);
  EXPECT_EQ(format_cache_control(cc_of("no-cache=a")), "no-cache=\"a\"");
  EXPECT_EQ(format_cache_control(cc_of("max-stale=10")), "max-stale=10");
  EXPECT_EQ(format_cache_control(cache_control{}), "");
}

// --- storability ------------------------------------------------------------------------------

struct exchange {
  fields request;
  fields response;
  int status = 200;
  http::method m = http::method::get;
};

store_verdict verdict(const exchange& x, const cache_options& o = {}) {
  return check_storable(cache_request::from(x.m, x.request),
                        cache_response::from(x.status, x.response), o);
}

exchange fresh_exchange(http::method m = http::method::get, int status = 200) {
  return {{}, make_fields({{"Cache-Control", "max-age=3600"}}), status, m};
}

TEST(caching_storable, only_get_and_head_are_stored) {
  EXPECT_EQ(verdict(fresh_exchange(method::get)), store_verdict::storable);
  EXPECT_EQ(verdict(fresh_exchange(method::head)), store_verdict::storable);
  for (method m : {method::post, method::put, method::delete_, method::options, method::trace,
                   method::patch, method::connect, method::other})
    EXPECT_EQ(verdict(fresh_exchange(m)), store_verdict::method) << to_string(m);
}

TEST(caching_storable, any_final_status_with_explicit_freshness) {
  for (int status :
       {200, 203, 204, 299, 301, 302, 303, 307, 308, 400, 404, 410, 499, 500, 502, 503, 504, 599})
    EXPECT_EQ(verdict(fresh_exchange(method::get, status)), store_verdict::storable) << status;
  for (int status : {100, 101, 103, 199, 206, 304, 600, 0})
    EXPECT_EQ(verdict(fresh_exchange(method::get, status)), store_verdict::status) << status;
}

TEST(caching_storable, heuristic_statuses_need_no_explicit_freshness) {
  const cache_time lm = t0 - 24h;
  for (int status : {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501}) {
    exchange x{{}, make_fields({{"Last-Modified", date(lm)}, {"Date", date(t0)}}), status};
    EXPECT_EQ(verdict(x), store_verdict::storable) << status;
  }
  for (int status : {201, 202, 302, 307, 403, 500, 502, 503, 504, 599}) {
    exchange x{{}, make_fields({{"Last-Modified", date(lm)}, {"Date", date(t0)}}), status};
    EXPECT_EQ(verdict(x), store_verdict::no_freshness) << status;
  }
  exchange pub{
      {},
      make_fields({{"Last-Modified", date(lm)}, {"Date", date(t0)}, {"Cache-Control", "public"}}),
      599};
  EXPECT_EQ(verdict(pub), store_verdict::storable);
  exchange expires{{}, make_fields({{"Expires", date(t0 + 1h)}, {"Date", date(t0)}}), 503};
  EXPECT_EQ(verdict(expires), store_verdict::storable);
}

TEST(caching_storable, no_store_in_request_or_response) {
  exchange res = fresh_exchange();
  res.response =
      make_fields({{"Cache-Control", "max-age=10000, No-StOrE"}, {"Expires", date(t0 + 1h)}});
  EXPECT_EQ(verdict(res), store_verdict::no_store);
  exchange req = fresh_exchange();
  req.request = make_fields({{"Cache-Control", "no-store"}});
  EXPECT_EQ(verdict(req), store_verdict::no_store);
}

TEST(caching_storable, private_only_in_a_private_cache) {
  exchange x = fresh_exchange();
  x.response = make_fields({{"Cache-Control", "private, max-age=3600"}});
  EXPECT_EQ(verdict(x), store_verdict::private_);
  EXPECT_EQ(verdict(x, {.shared = false}), store_verdict::storable);
  x.response = make_fields({{"Cache-Control", "private=\"Set-Cookie\", max-age=3600"}});
  EXPECT_EQ(verdict(x), store_verdict::storable);
  // private marks it cacheable for a private cache even without freshness.
  exchange p{{}, make_fields({{"Cache-Control", "private"}, {"ETag", "\"a\""}}), 599};
  EXPECT_EQ(verdict(p, {.shared = false}), store_verdict::storable);
}

TEST(caching_storable, authorization_needs_an_explicit_permission) {
  const fields auth = make_fields({{"Authorization", "FOO"}});
  exchange x{auth, make_fields({{"Expires", date(t0 + 720h)}, {"Date", date(t0)}})};
  EXPECT_EQ(verdict(x), store_verdict::authorization);
  EXPECT_EQ(verdict(x, {.shared = false}), store_verdict::storable);
  x.response = make_fields({{"Cache-Control", "max-age=3600"}});
  EXPECT_EQ(verdict(x), store_verdict::authorization);
  for (std::string_view cc :
       {"max-age=3600, public", "max-age=3600, must-revalidate", "s-maxage=3600"}) {
    x.response = make_fields({{"Cache-Control", cc}});
    EXPECT_EQ(verdict(x), store_verdict::storable) << cc;
  }
  EXPECT_TRUE(allows_authorized_reuse(cc_of("public")));
  EXPECT_FALSE(allows_authorized_reuse(cc_of("max-age=5, proxy-revalidate")));
}

TEST(caching_storable, must_understand_overrides_no_store_for_understood_statuses) {
  exchange x = fresh_exchange();
  x.response = make_fields({{"Cache-Control", "must-understand, no-store, max-age=60"}});
  EXPECT_EQ(verdict(x), store_verdict::storable);
  x.status = 299;
  EXPECT_EQ(verdict(x), store_verdict::status);
  x.status = 404;
  EXPECT_EQ(verdict(x), store_verdict::storable);
  EXPECT_TRUE(understands_status(200));
  EXPECT_TRUE(understands_status(308));
  EXPECT_FALSE(understands_status(206));
  EXPECT_FALSE(understands_status(304));
  EXPECT_FALSE(understands_status(418));
  EXPECT_FALSE(understands_status(599));
}

TEST(caching_storable, unreusable_responses_are_skipped_unless_asked) {
  exchange bare{{}, {}, 200};
  EXPECT_EQ(verdict(bare), store_verdict::not_reusable);
  EXPECT_EQ(verdict(bare, {.store_unreusable = true}), store_verdict::storable);
  exchange etag{{}, make_fields({{"ETag", "\"x\""}}), 200};
  EXPECT_EQ(verdict(etag), store_verdict::storable);
  exchange sie{{}, make_fields({{"Cache-Control", "stale-if-error=60"}}), 200};
  EXPECT_EQ(verdict(sie), store_verdict::storable);
  for (std::string_view v : {"*", "*, *", ", *", "Foo, *", "Foo Bar"}) {
    exchange star{{}, make_fields({{"Cache-Control", "max-age=60"}, {"Vary", v}}), 200};
    EXPECT_EQ(verdict(star), store_verdict::not_reusable) << v;
  }
  exchange two{
      {}, make_fields({{"Cache-Control", "max-age=60"}, {"Vary", ""}, {"Vary", "*"}}), 200};
  EXPECT_EQ(verdict(two), store_verdict::not_reusable);
}

TEST(caching_storable, verdicts_have_detail_tokens) {
  EXPECT_EQ(to_string(store_verdict::storable), "storable");
  EXPECT_EQ(to_string(store_verdict::no_store), "no-store");
  EXPECT_EQ(to_string(store_verdict::private_), "private");
  EXPECT_EQ(to_string(store_verdict::authorization), "authorization");
  EXPECT_EQ(to_string(store_verdict::no_freshness), "no-freshness");
  EXPECT_EQ(to_string(store_verdict::not_reusable), "not-reusable");
  EXPECT_EQ(to_string(store_verdict::method), "method");
  EXPECT_EQ(to_string(store_verdict::status), "status");
}

// --- stored fields ------------------------------------------------------------------------------

TEST(caching_fields, hop_by_hop_and_listed_fields_are_not_stored) {
  const fields response =
      make_fields({{"Connection", "a, b"},
                   {"a", "1"},
                   {"Cache-Control", "no-cache=\"c\", private=\"d\", max-age=60"},
                   {"b", "2"},
                   {"c", "3"},
                   {"d", "4"},
                   {"Keep-Alive", "timeout=5"},
                   {"Transfer-Encoding", "chunked"},
                   {"Proxy-Authenticate", "Basic"},
                   {"Set-Cookie", "a=b"},
                   {"Date", date(t0)},
                   {"e", "5"}});
  const cache_control cc = parse_cache_control(response);
  fields stored;
  copy_storable_fields(response, cc, t0 + 1s, stored);
  EXPECT_EQ(names_of(stored),
            (std::vector<std::string>{"Cache-Control", "Set-Cookie", "Date", "e"}));
  EXPECT_EQ(stored.get("Date"), date(t0));

  fields private_copy;
  copy_storable_fields(response, cc, t0, private_copy, {.shared = false});
  EXPECT_TRUE(private_copy.contains("d"));
  EXPECT_FALSE(private_copy.contains("c"));
}

TEST(caching_fields, date_is_added_when_missing) {
  const fields response = make_fields({{"Cache-Control", "max-age=60"}});
  fields stored;
  copy_storable_fields(response, parse_cache_control(response), t0, stored);
  EXPECT_EQ(stored.get("Date"), date(t0));
}

TEST(caching_fields, unstored_field_names) {
  for (std::string_view n :
       {"Connection", "keep-alive", "Proxy-Connection", "TE", "transfer-encoding", "Upgrade",
        "Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization"})
    EXPECT_TRUE(is_unstored_field(n)) << n;
  for (std::string_view n : {"Set-Cookie", "WWW-Authenticate", "Content-Length", "Trailer", "Age"})
    EXPECT_FALSE(is_unstored_field(n)) << n;
}

// --- freshness ----------------------------------------------------------------------------------

freshness lifetime_of(fields response, int status = 200, const cache_options& o = {},
                      cache_time received = t0) {
  return freshness_lifetime(cache_response::from(status, response), received, o);
}

TEST(caching_freshness, s_maxage_wins_in_a_shared_cache_then_max_age_then_expires) {
  EXPECT_EQ(lifetime_of(make_fields({{"Cache-Control", "max-age=3600, s-maxage=1"}})).lifetime, 1s);
  EXPECT_EQ(lifetime_of(make_fields({{"Cache-Control", "s-maxage=1, max-age=3600"}})).lifetime, 1s);
  EXPECT_EQ(
      lifetime_of(make_fields({{"Cache-Control", "max-age=3600"}, {"Cache-Control", "s-maxage=1"}}))
          .lifetime,
      1s);
  EXPECT_EQ(lifetime_of(make_fields({{"Cache-Control", "max-age=1, s-maxage=3600"}})).lifetime,
            3600s);
  EXPECT_EQ(lifetime_of(make_fields({{"Cache-Control", "max-age=1, s-maxage=3600"}}), 200,
                        {.shared = false})
                .lifetime,
            1s);
  // max-age beats Expires, past or invalid.
  EXPECT_EQ(lifetime_of(make_fields({{"Cache-Control", "max-age=3600"},
                                     {"Expires", date(t0 - 10000s)},
                                     {"Date", date(t0)}}))
                .lifetime,
            3600s);
  EXPECT_EQ(
      lifetime_of(make_fields({{"Cache-Control", "max-age=3600"}, {"Expires", "0"}})).lifetime,
      3600s);
  EXPECT_EQ(
      lifetime_of(make_fields({{"Cache-Control", "max-age=0"}, {"Expires", date(t0 + 10000s)}}))
          .lifetime,
      0s);
  // An invalid max-age still overrides Expires, and is stale.
  EXPECT_EQ(
      lifetime_of(make_fields({{"Cache-Control", "max-age=abc"}, {"Expires", date(t0 + 10000s)}}))
          .lifetime,
      0s);
  EXPECT_EQ(lifetime_of(make_fields({{"Cache-Control", "max-age=99999999999"}})).lifetime,
            max_delta_seconds);
}

TEST(caching_freshness, expires_minus_date) {
  EXPECT_EQ(
      lifetime_of(make_fields({{"Expires", date(t0 + 30s)}, {"Date", date(t0 + 10s)}})).lifetime,
      20s);
  // Without a valid Date, the time the response was received stands in.
  EXPECT_EQ(lifetime_of(make_fields({{"Expires", date(t0 + 30s)}}), 200, {}, t0).lifetime, 30s);
  EXPECT_EQ(lifetime_of(make_fields({{"Date", "foo"}, {"Expires", date(t0 + 10s)}}), 200, {}, t0)
                .lifetime,
            10s);
  // Already expired, and Expires older than Date.
  EXPECT_EQ(lifetime_of(make_fields({{"Expires", date(t0 - 720h)}, {"Date", date(t0)}})).lifetime,
            0s);
  EXPECT_EQ(
      lifetime_of(make_fields({{"Expires", date(t0 + 300s)}, {"Date", date(t0 + 400s)}})).lifetime,
      0s);
  EXPECT_EQ(lifetime_of(make_fields({{"Expires", date(t0)}, {"Date", date(t0)}})).lifetime, 0s);
  EXPECT_FALSE(lifetime_of(make_fields({{"Expires", date(t0 + 30s)}})).heuristic);
}

TEST(caching_freshness, invalid_expires_is_in_the_past) {
  const cache_time now = parse_http_date("Mon, 01 Jan 2024 00:00:00 GMT").value();
  for (std::string_view v : {"0", "-1", "Thu, 18 Aug 2050 02:01:18 UTC",
                             "Thu, 18 Aug 50 02:01:18 GMT", "Thu 18 Aug 2050 02:01:18 GMT",
                             "Thu, 18  Aug  2050 02:01:18 GMT", "Thu, 18-Aug-2050 02:01:18 GMT",
                             "Thu, 18 Aug 2050 02.01.18 GMT", "Thu, 18 Aug 2050 2:01:18 GMT", ""})
    EXPECT_EQ(
        lifetime_of(make_fields({{"Expires", v}, {"Date", date(now)}}), 200, {}, now).lifetime, 0s)
        << v;
  // Dates match case-insensitively (§4.2).
  for (std::string_view v : {"THU, 18 Aug 2050 02:01:18 GMT", "Thu, 18 AUG 2050 02:01:18 GMT",
                             "Thu, 18 Aug 2050 02:01:18 gMT", "thursday, 18-aug-50 02:01:18 gmt"})
    EXPECT_GT(
        lifetime_of(make_fields({{"Expires", v}, {"Date", date(now)}}), 200, {}, now).lifetime,
        24h * 365 * 20)
        << v;
}

TEST(caching_freshness, several_expires_that_disagree_are_stale) {
  EXPECT_EQ(lifetime_of(make_fields({{"Expires", date(t0 + 60s)},
                                     {"Expires", date(t0 + 600s)},
                                     {"Date", date(t0)}}))
                .lifetime,
            0s);
  EXPECT_EQ(lifetime_of(
                make_fields(
                    {{"Expires", date(t0 + 60s)}, {"Expires", date(t0 + 60s)}, {"Date", date(t0)}}))
                .lifetime,
            60s);
}

TEST(caching_freshness, heuristic_is_a_fraction_of_the_time_since_last_modified) {
  const freshness f =
      lifetime_of(make_fields({{"Last-Modified", date(t0 - 10000s)}, {"Date", date(t0)}}));
  EXPECT_EQ(f.lifetime, 1000s);
  EXPECT_TRUE(f.heuristic);
  EXPECT_EQ(lifetime_of(make_fields({{"Last-Modified", date(t0 - 10000s)}, {"Date", date(t0)}}),
                        200, {.heuristic_percent = 25})
                .lifetime,
            2500s);
  // Capped.
  EXPECT_EQ(lifetime_of(make_fields({{"Last-Modified", date(t0 - 24h * 365)}, {"Date", date(t0)}}))
                .lifetime,
            24h);
  EXPECT_EQ(lifetime_of(make_fields({{"Last-Modified", date(t0 - 24h * 365)}, {"Date", date(t0)}}),
                        200, {.max_heuristic_lifetime = 1h})
                .lifetime,
            1h);
  // Without Date, the receive time.
  EXPECT_EQ(lifetime_of(make_fields({{"Last-Modified", date(t0 - 100s)}}), 200, {}, t0).lifetime,
            10s);
  // Nothing to go on, a Last-Modified in the future, heuristics off.
  EXPECT_EQ(lifetime_of({}).lifetime, 0s);
  EXPECT_EQ(
      lifetime_of(make_fields({{"Last-Modified", date(t0 + 100s)}, {"Date", date(t0)}})).lifetime,
      0s);
  EXPECT_EQ(lifetime_of(make_fields({{"Last-Modified", date(t0 - 10000s)}, {"Date", date(t0)}}),
                        200, {.heuristic_percent = 0})
                .lifetime,
            0s);
}

TEST(caching_freshness, heuristic_only_for_allowed_statuses_or_public) {
  const auto h = [](int status, std::string_view cc) {
    fields f = make_fields({{"Last-Modified", date(t0 - 10000s)}, {"Date", date(t0)}});
    if (!cc.empty()) {
      EXPECT_TRUE(f.add("Cache-Control", cc));
    }
    return lifetime_of(std::move(f), status).lifetime;
  };
  EXPECT_EQ(h(404, ""), 1000s);
  EXPECT_EQ(h(501, ""), 1000s);
  EXPECT_EQ(h(302, ""), 0s);
  EXPECT_EQ(h(503, ""), 0s);
  EXPECT_EQ(h(599, "public"), 1000s);
  // An explicit expiration, even a bad one, rules heuristics out.
  fields f =
      make_fields({{"Last-Modified", date(t0 - 10000s)}, {"Date", date(t0)}, {"Expires", "0"}});
  EXPECT_EQ(lifetime_of(std::move(f)).lifetime, 0s);
}

// --- age
// ------------------------------------------------------------------------------------------

TEST(caching_age, parse_age_takes_the_first_member_and_ignores_invalid_values) {
  EXPECT_EQ(parse_age(make_fields({{"Age", "15"}})), 15s);
  EXPECT_EQ(parse_age(make_fields({{"Age", " 15 "}})), 15s);
  EXPECT_EQ(parse_age(make_fields({{"Age", "7200,0"}})), 7200s);
  EXPECT_EQ(parse_age(make_fields({{"Age", "0, 7200"}})), 0s);
  EXPECT_EQ(parse_age(make_fields({{"Age", "0"}, {"Age", "7200"}})), 0s);
  EXPECT_EQ(parse_age(make_fields({{"Age", "99999999999"}})), max_delta_seconds);
  for (std::string_view v : {"abc", "-7200", "7200.0", "", "1e3", "+5"})
    EXPECT_EQ(parse_age(make_fields({{"Age", v}})), std::nullopt) << v;
  EXPECT_EQ(parse_age(fields{}), std::nullopt);
}

TEST(caching_age, corrected_initial_age_follows_rfc_9111_4_2_3) {
  // Request sent at t0, response received 2 s later, generated at t0+1.
  const cache_time sent = t0;
  const cache_time received = t0 + 2s;
  // apparent_age = 1, corrected_age_value = 0 + 2: the delay wins.
  EXPECT_EQ(corrected_initial_age(make_fields({{"Date", date(t0 + 1s)}}), sent, received), 2s);
  // An Age from upstream adds to the delay.
  EXPECT_EQ(
      corrected_initial_age(make_fields({{"Date", date(t0 + 1s)}, {"Age", "30"}}), sent, received),
      32s);
  // A Date far behind (an upstream cache's copy): apparent_age wins.
  EXPECT_EQ(
      corrected_initial_age(make_fields({{"Date", date(t0 - 100s)}, {"Age", "5"}}), sent, received),
      102s);
  // A Date in the future gives no negative age.
  EXPECT_EQ(corrected_initial_age(make_fields({{"Date", date(t0 + 1h)}}), sent, received), 2s);
  // No Date: received now, only the delay counts.
  EXPECT_EQ(corrected_initial_age({}, sent, received), 2s);
  // Sub-second delays round down.
  EXPECT_EQ(corrected_initial_age({}, t0, t0 + 900ms), 0s);
  // Even absurd inputs do not overflow.
  EXPECT_EQ(corrected_initial_age(make_fields({{"Age", "99999999999"}}), cache_time::min(),
                                  cache_time::max()),
            2 * max_delta_seconds);
}

TEST(caching_age, current_age_adds_resident_time) {
  EXPECT_EQ(current_age(32s, t0 + 2s, t0 + 2s), 32s);
  EXPECT_EQ(current_age(32s, t0 + 2s, t0 + 12s), 42s);
  EXPECT_EQ(current_age(32s, t0 + 2s, t0 + 12s + 999ms), 42s);
  // A clock that went back adds nothing.
  EXPECT_EQ(current_age(5s, t0, t0 - 10s), 5s);
}

TEST(caching_age, format_age_caps_at_two_to_the_31) {
  EXPECT_EQ(format_age(0s), "0");
  EXPECT_EQ(format_age(376s), "376");
  EXPECT_EQ(format_age(-5s), "0");
  EXPECT_EQ(format_age(max_delta_seconds), "2147483648");
  EXPECT_EQ(format_age(max_delta_seconds * 3), "2147483648");
}

TEST(caching_age, age_beyond_lifetime_is_stale) {
  // max-age=10 with Age: 15 is stale as soon as it arrives.
  const fields r =
      make_fields({{"Date", date(t0)}, {"Cache-Control", "max-age=10"}, {"Age", "15"}});
  const seconds age = current_age(corrected_initial_age(r, t0, t0), t0, t0);
  const freshness f = freshness_lifetime(cache_response::from(200, r), t0);
  EXPECT_EQ(decide_reuse({}, parse_cache_control(r), age, f.lifetime).action,
            reuse_action::revalidate);
  // Expires - Date = 20 with Age 25 (slow Date).
  const fields slow =
      make_fields({{"Date", date(t0 - 10s)}, {"Expires", date(t0 + 10s)}, {"Age", "25"}});
  EXPECT_LE(freshness_lifetime(cache_response::from(200, slow), t0).lifetime,
            current_age(corrected_initial_age(slow, t0, t0), t0, t0));
}

// --- Vary
// ---------------------------------------------------------------------------------------------

TEST(caching_vary, no_vary_matches_every_request) {
  EXPECT_EQ(secondary_key(fields{}, make_fields({{"Foo", "1"}})), "");
  EXPECT_TRUE(vary_matches(fields{}, make_fields({{"Foo", "1"}}), make_fields({{"Foo", "2"}})));
}

TEST(caching_vary, selecting_fields_must_match) {
  const fields response = make_fields({{"Vary", "Foo"}});
  const fields foo1 = make_fields({{"Foo", "1"}, {"Other", "2"}});
  EXPECT_TRUE(vary_matches(response, foo1, make_fields({{"foo", "1"}, {"Other", "3"}})));
  EXPECT_FALSE(vary_matches(response, foo1, make_fields({{"Foo", "2"}})));
  EXPECT_FALSE(vary_matches(response, foo1, fields{}));
  EXPECT_TRUE(vary_matches(response, fields{}, make_fields({{"Bar", "1"}})));
  // Absent only matches absent, not empty.
  EXPECT_FALSE(vary_matches(response, fields{}, make_fields({{"Foo", ""}})));
  EXPECT_EQ(secondary_key(response, foo1), "foo:1\n");
  EXPECT_EQ(secondary_key(response, fields{}), "foo\n");
  EXPECT_EQ(secondary_key(response, make_fields({{"Foo", ""}})), "foo:\n");
}

TEST(caching_vary, names_are_sorted_lowercased_and_deduplicated) {
  const fields a = make_fields({{"Vary", "Foo, Bar"}, {"Vary", "baz, FOO"}});
  const fields b = make_fields({{"Vary", "baz,bar,foo"}});
  const fields request = make_fields({{"Foo", "1"}, {"Bar", "abc"}, {"Baz", "789"}});
  EXPECT_EQ(secondary_key(a, request), "bar:abc\nbaz:789\nfoo:1\n");
  EXPECT_EQ(secondary_key(a, request), secondary_key(b, request));
  EXPECT_FALSE(
      vary_matches(a, request, make_fields({{"Foo", "1"}, {"Bar", "abc4"}, {"Baz", "789"}})));
  EXPECT_TRUE(vary_matches(a, make_fields({{"Foo", "1"}, {"Baz", "789"}}),
                           make_fields({{"Baz", "789"}, {"Foo", "1"}})));
}

TEST(caching_vary, values_are_normalised_around_commas_and_across_lines) {
  const fields response = make_fields({{"Vary", "Foo"}});
  EXPECT_TRUE(
      vary_matches(response, make_fields({{"Foo", "1,2"}}), make_fields({{"Foo", " 1, 2 "}})));
  EXPECT_TRUE(vary_matches(response, make_fields({{"Foo", "1, 2"}}),
                           make_fields({{"Foo", "1"}, {"Foo", "2"}})));
  EXPECT_TRUE(
      vary_matches(response, make_fields({{"Foo", "1,,2"}}), make_fields({{"Foo", "1,2"}})));
  // Order and case are kept: they may be significant.
  EXPECT_FALSE(
      vary_matches(response, make_fields({{"Foo", "en, de"}}), make_fields({{"Foo", "de, en"}})));
  EXPECT_FALSE(
      vary_matches(response, make_fields({{"Foo", "gzip"}}), make_fields({{"Foo", "GZIP"}})));
  // Whitespace inside a member and commas inside quotes are kept.
  EXPECT_FALSE(vary_matches(response, make_fields({{"Foo", "a b"}}), make_fields({{"Foo", "ab"}})));
  EXPECT_EQ(secondary_key(response, make_fields({{"Foo", "x=\"1, 2\" , y"}})),
            "foo:x=\"1, 2\",y\n");
}

TEST(caching_vary, star_never_matches) {
  for (auto lines :
       {std::vector<std::string_view>{"*"}, std::vector<std::string_view>{"*, *"},
        std::vector<std::string_view>{"*", "*"}, std::vector<std::string_view>{", *"},
        std::vector<std::string_view>{"", "*"}, std::vector<std::string_view>{"*, Foo"},
        std::vector<std::string_view>{"Foo, *"}}) {
    fields response;
    for (auto v : lines) ASSERT_TRUE(response.add("Vary", v));
    const fields request = make_fields({{"Foo", "1"}, {"Baz", "789"}});
    EXPECT_EQ(secondary_key(response, request), std::nullopt);
    EXPECT_FALSE(vary_matches(response, request, request));
  }
  EXPECT_EQ(secondary_key(make_fields({{"Vary", "Foo Bar"}}), fields{}), std::nullopt);
}

// --- reuse
// -------------------------------------------------------------------------------------------

TEST(caching_reuse, fresh_is_served_and_stale_revalidated) {
  const reuse_decision fresh = decide_reuse({}, cc_of("max-age=60"), 10s, 60s);
  EXPECT_EQ(fresh.action, reuse_action::serve_fresh);
  EXPECT_EQ(fresh.fwd, cache_fwd::none);
  EXPECT_EQ(fresh.ttl, 50s);
  EXPECT_EQ(fresh.reason, "fresh");
  const reuse_decision stale = decide_reuse({}, cc_of("max-age=60"), 60s, 60s);
  EXPECT_EQ(stale.action, reuse_action::revalidate);
  EXPECT_EQ(stale.fwd, cache_fwd::stale);
  EXPECT_EQ(stale.ttl, 0s);
  EXPECT_EQ(stale.reason, "stale");
  EXPECT_EQ(decide_reuse({}, {}, 0s, 0s).action, reuse_action::revalidate);
}

TEST(caching_reuse, response_no_cache_always_revalidates_unless_qualified) {
  const reuse_decision d = decide_reuse({}, cc_of("max-age=10000, No-CaChE"), 0s, 10000s);
  EXPECT_EQ(d.action, reuse_action::revalidate);
  EXPECT_EQ(d.reason, "no-cache");
  EXPECT_EQ(d.fwd, cache_fwd::stale);
  EXPECT_EQ(decide_reuse(cc_of("max-stale"), cc_of("no-cache"), 5s, 0s).action,
            reuse_action::revalidate);
  EXPECT_EQ(decide_reuse({}, cc_of("no-cache=\"a, b\", max-age=3600"), 1s, 3600s).action,
            reuse_action::serve_fresh);
}

TEST(caching_reuse, request_directives_can_refuse_a_fresh_response) {
  const cache_control res = cc_of("max-age=3600");
  const reuse_decision nc = decide_reuse(cc_of("no-cache"), res, 1s, 3600s);
  EXPECT_EQ(nc.action, reuse_action::revalidate);
  EXPECT_EQ(nc.fwd, cache_fwd::request);
  EXPECT_EQ(nc.reason, "request-no-cache");
  // request max-age: the age must not exceed it.
  EXPECT_EQ(decide_reuse(cc_of("max-age=600"), res, 1800s, 3600s).reason, "request-max-age");
  EXPECT_EQ(decide_reuse(cc_of("max-age=600"), res, 600s, 3600s).action, reuse_action::serve_fresh);
  EXPECT_EQ(decide_reuse(cc_of("max-age=0"), res, 1s, 3600s).action, reuse_action::revalidate);
  EXPECT_EQ(decide_reuse(cc_of("max-age=abc"), res, 1s, 3600s).action, reuse_action::revalidate);
  // min-fresh: lifetime - age must be at least it.
  EXPECT_EQ(decide_reuse(cc_of("min-fresh=2000"), cc_of("max-age=1500"), 0s, 1500s).reason,
            "request-min-fresh");
  EXPECT_EQ(decide_reuse(cc_of("min-fresh=1000"), cc_of("max-age=1500"), 1000s, 1500s).action,
            reuse_action::revalidate);
  EXPECT_EQ(decide_reuse(cc_of("min-fresh=500"), cc_of("max-age=1500"), 1000s, 1500s).action,
            reuse_action::serve_fresh);
  // Stale and refused by the request: fwd=stale.
  EXPECT_EQ(decide_reuse(cc_of("no-cache"), res, 4000s, 3600s).fwd, cache_fwd::stale);
}

TEST(caching_reuse, pragma_counts_only_when_asked) {
  cache_control req;
  req.pragma_no_cache = true;
  EXPECT_EQ(decide_reuse(req, cc_of("max-age=60"), 1s, 60s).action, reuse_action::serve_fresh);
  const reuse_decision d =
      decide_reuse(req, cc_of("max-age=60"), 1s, 60s, {.honor_request_pragma = true});
  EXPECT_EQ(d.action, reuse_action::revalidate);
  EXPECT_EQ(d.reason, "request-pragma");
}

TEST(caching_reuse, max_stale_serves_stale) {
  const cache_control res = cc_of("max-age=1");
  const reuse_decision d = decide_reuse(cc_of("max-stale=1000"), res, 2s, 1s);
  EXPECT_EQ(d.action, reuse_action::serve_stale);
  EXPECT_EQ(d.ttl, -1s);
  EXPECT_EQ(d.reason, "max-stale");
  EXPECT_EQ(decide_reuse(cc_of("max-stale=1000"), cc_of("max-age=1500"), 2000s, 1500s).action,
            reuse_action::serve_stale);
  EXPECT_EQ(decide_reuse(cc_of("max-stale=10"), res, 12s, 1s).action, reuse_action::revalidate);
  EXPECT_EQ(decide_reuse(cc_of("max-stale=10"), res, 11s, 1s).action, reuse_action::serve_stale);
  EXPECT_EQ(decide_reuse(cc_of("max-stale"), res, 1000000s, 1s).action, reuse_action::serve_stale);
  // ... but request max-age still applies.
  EXPECT_EQ(decide_reuse(cc_of("max-stale, max-age=5"), res, 10s, 1s).action,
            reuse_action::revalidate);
}

TEST(caching_reuse, revalidation_directives_forbid_serving_stale) {
  for (std::string_view cc :
       {"max-age=2, must-revalidate", "max-age=2, proxy-revalidate", "s-maxage=2",
        "max-age=2, stale-while-revalidate=60, must-revalidate"}) {
    const reuse_decision d = decide_reuse(cc_of("max-stale"), cc_of(cc), 5s, 2s);
    EXPECT_EQ(d.action, reuse_action::revalidate) << cc;
    EXPECT_EQ(d.reason, "must-revalidate") << cc;
    // Fresh is still served.
    EXPECT_EQ(decide_reuse({}, cc_of(cc), 1s, 2s).action, reuse_action::serve_fresh) << cc;
  }
  // proxy-revalidate and s-maxage bind shared caches only.
  EXPECT_EQ(decide_reuse(cc_of("max-stale"), cc_of("max-age=2, proxy-revalidate"), 5s, 2s,
                         {.shared = false})
                .action,
            reuse_action::serve_stale);
}

TEST(caching_reuse, stale_while_revalidate_serves_and_revalidates_in_background) {
  const cache_control res = cc_of("max-age=10, stale-while-revalidate=30");
  const reuse_decision d = decide_reuse({}, res, 25s, 10s);
  EXPECT_EQ(d.action, reuse_action::serve_stale_revalidate);
  EXPECT_EQ(d.ttl, -15s);
  EXPECT_EQ(decide_reuse({}, res, 40s, 10s).action, reuse_action::serve_stale_revalidate);
  EXPECT_EQ(decide_reuse({}, res, 41s, 10s).action, reuse_action::revalidate);
  EXPECT_EQ(decide_reuse(cc_of("no-cache"), res, 25s, 10s).action, reuse_action::revalidate);
}

TEST(caching_reuse, only_if_cached_turns_revalidation_into_504) {
  const cache_control oic = cc_of("only-if-cached");
  EXPECT_EQ(decide_reuse(oic, cc_of("max-age=60"), 1s, 60s).action, reuse_action::serve_fresh);
  const reuse_decision d = decide_reuse(oic, cc_of("max-age=60"), 61s, 60s);
  EXPECT_EQ(d.action, reuse_action::gateway_timeout);
  EXPECT_EQ(d.reason, "stale");
  EXPECT_EQ(decide_reuse(cc_of("only-if-cached, no-cache"), cc_of("max-age=60"), 1s, 60s).action,
            reuse_action::gateway_timeout);
  EXPECT_EQ(decide_reuse(cc_of("only-if-cached, max-stale"), cc_of("max-age=60"), 100s, 60s).action,
            reuse_action::serve_stale);
}

TEST(caching_reuse, stale_if_error) {
  const auto sie = [](std::string_view req, std::string_view res, seconds age, seconds lifetime,
                      const cache_options& o = {}) {
    return may_serve_stale_on_error(cc_of(req), cc_of(res), age, lifetime, o);
  };
  EXPECT_TRUE(sie("", "max-age=2, stale-if-error=60", 50s, 2s));
  EXPECT_TRUE(sie("", "max-age=2, stale-if-error=60", 62s, 2s));
  EXPECT_FALSE(sie("", "max-age=2, stale-if-error=60", 63s, 2s));
  EXPECT_FALSE(sie("", "max-age=2", 3s, 2s));
  EXPECT_TRUE(sie("stale-if-error=10", "max-age=2", 12s, 2s));
  EXPECT_FALSE(sie("stale-if-error=10", "max-age=2", 13s, 2s));
  EXPECT_TRUE(sie("max-stale", "max-age=2", 1000s, 2s));
  EXPECT_TRUE(sie("", "max-age=2", 100s, 2s, {.stale_if_error_default = 300s}));
  EXPECT_FALSE(sie("", "max-age=2", 303s, 2s, {.stale_if_error_default = 300s}));
  // A fresh response may be served; prohibitions win over stale-if-error.
  EXPECT_TRUE(sie("", "max-age=60", 3s, 60s));
  for (std::string_view res :
       {"max-age=2, stale-if-error=60, must-revalidate",
        "max-age=2, stale-if-error=60, proxy-revalidate", "s-maxage=2, stale-if-error=60"})
    EXPECT_FALSE(sie("", res, 5s, 2s)) << res;
  EXPECT_FALSE(sie("", "max-age=60, no-cache, stale-if-error=60", 3s, 60s));
  EXPECT_TRUE(is_stale_if_error_status(500));
  EXPECT_TRUE(is_stale_if_error_status(504));
  EXPECT_FALSE(is_stale_if_error_status(501));
  EXPECT_FALSE(is_stale_if_error_status(404));
}

// --- validation
// ------------------------------------------------------------------------------------------

TEST(caching_validation, conditional_request_uses_the_stored_validators) {
  const fields stored = make_fields({{"ETag", "\"abcdef\""}, {"Last-Modified", date(t0)}});
  fields out = make_fields({{"Host", "a"},
                            {"If-None-Match", "\"client\""},
                            {"If-Match", "\"x\""},
                            {"If-Range", "\"x\""},
                            {"If-Unmodified-Since", date(t0)}});
  ASSERT_TRUE(set_validation_fields(stored, out));
  EXPECT_EQ(out.get("If-None-Match"), "\"abcdef\"");
  EXPECT_EQ(out.get("If-Modified-Since"), date(t0));
  EXPECT_EQ(out.count("If-None-Match"), 1u);
  EXPECT_FALSE(out.contains("If-Match"));
  EXPECT_FALSE(out.contains("If-Range"));
  EXPECT_FALSE(out.contains("If-Unmodified-Since"));
  EXPECT_EQ(out.get("Host"), "a");
}

TEST(caching_validation, weak_and_unquoted_etags) {
  fields out;
  ASSERT_TRUE(set_validation_fields(make_fields({{"ETag", "W/\"abcdef\""}}), out));
  EXPECT_EQ(out.get("If-None-Match"), "W/\"abcdef\"");
  EXPECT_FALSE(out.contains("If-Modified-Since"));
  fields unquoted;
  ASSERT_TRUE(set_validation_fields(make_fields({{"ETag", "abcdef"}}), unquoted));
  EXPECT_EQ(unquoted.get("If-None-Match"), "\"abcdef\"");
}

TEST(caching_validation, no_validator_means_an_unconditional_request) {
  fields out = make_fields({{"If-None-Match", "\"client\""}});
  EXPECT_FALSE(set_validation_fields(make_fields({{"Date", date(t0)}}), out));
  EXPECT_EQ(out.get("If-None-Match"), "\"client\"");
  fields lm_only;
  ASSERT_TRUE(set_validation_fields(make_fields({{"Last-Modified", date(t0 - 1h)}}), lm_only));
  EXPECT_EQ(lm_only.get("If-Modified-Since"), date(t0 - 1h));
  EXPECT_FALSE(lm_only.contains("If-None-Match"));
}

TEST(caching_validation, a_304_selects_by_validator) {
  const auto sel = [](std::initializer_list<std::pair<std::string_view, std::string_view>> stored,
                      std::initializer_list<std::pair<std::string_view, std::string_view>> nm) {
    return select_for_update(make_fields(stored), make_fields(nm));
  };
  EXPECT_EQ(sel({{"ETag", "\"a\""}}, {{"ETag", "\"a\""}}), update_match::strong);
  EXPECT_EQ(sel({{"ETag", "W/\"a\""}}, {{"ETag", "\"a\""}}), update_match::weak);
  EXPECT_EQ(sel({{"ETag", "\"a\""}}, {{"ETag", "W/\"a\""}}), update_match::weak);
  EXPECT_EQ(sel({{"ETag", "\"a\""}}, {{"ETag", "\"b\""}}), update_match::none);
  EXPECT_EQ(sel({}, {{"ETag", "\"a\""}}), update_match::none);
  EXPECT_EQ(sel({{"ETag", "\"a\""}}, {{"ETag", "garbage"}}), update_match::none);
  EXPECT_EQ(sel({{"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}},
                {{"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}}),
            update_match::weak);
  EXPECT_EQ(sel({{"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}},
                {{"Last-Modified", "Sun, 06 Nov 1994 08:49:38 GMT"}}),
            update_match::none);
  EXPECT_EQ(sel({}, {}), update_match::no_validator);
  EXPECT_EQ(sel({{"ETag", "\"a\""}}, {}), update_match::none);
}

TEST(caching_validation, a_304_updates_the_stored_fields) {
  fields stored = make_fields({{"Cache-Control", "max-age=1"},
                               {"Date", date(t0)},
                               {"ETag", "\"e\""},
                               {"Content-Type", "text/plain"},
                               {"Content-Length", "5"},
                               {"Set-Cookie", "a=b"},
                               {"Set-Cookie", "c=d"},
                               {"Age", "100"},
                               {"Test-Header", "A"}});
  const fields not_modified = make_fields({{"Cache-Control", "max-age=3600"},
                                           {"Date", date(t0 + 10s)},
                                           {"ETag", "\"e\""},
                                           {"Content-Type", "text/plain;charset=utf-8"},
                                           {"Content-Length", "0"},
                                           {"Set-Cookie", "a=c"},
                                           {"Connection", "X-Hop"},
                                           {"X-Hop", "1"},
                                           {"Keep-Alive", "timeout=5"},
                                           {"Test-Header", "B"},
                                           {"Test-Header", "C"}});
  update_stored_fields(stored, not_modified, t0 + 11s);
  EXPECT_EQ(stored.get("Cache-Control"), "max-age=3600");
  EXPECT_EQ(stored.get("Date"), date(t0 + 10s));
  EXPECT_EQ(stored.get("Content-Type"), "text/plain;charset=utf-8");
  EXPECT_EQ(stored.get("Content-Length"), "5");
  EXPECT_EQ(stored.get_all("Set-Cookie"), (std::vector<std::string_view>{"a=c"}));
  EXPECT_EQ(stored.get_all("Test-Header"), (std::vector<std::string_view>{"B", "C"}));
  EXPECT_FALSE(stored.contains("Age"));
  EXPECT_FALSE(stored.contains("X-Hop"));
  EXPECT_FALSE(stored.contains("Connection"));
  EXPECT_FALSE(stored.contains("Keep-Alive"));
}

TEST(caching_validation, update_keeps_stored_fields_the_304_omits_and_dates_it) {
  fields stored =
      make_fields({{"Date", date(t0)}, {"Test-Header", "A"}, {"Last-Modified", date(t0 - 1h)}});
  update_stored_fields(stored, make_fields({{"Cache-Control", "max-age=3600"}, {"Age", "3"}}),
                       t0 + 20s);
  EXPECT_EQ(stored.get("Test-Header"), "A");
  EXPECT_EQ(stored.get("Date"), date(t0 + 20s));
  EXPECT_EQ(stored.get("Age"), "3");
  // A new no-cache field list removes what it names.
  update_stored_fields(
      stored, make_fields({{"Cache-Control", "no-cache=\"test-header\""}, {"Date", date(t0)}}), t0);
  EXPECT_FALSE(stored.contains("Test-Header"));
}

TEST(caching_validation, head_responses_update_or_invalidate) {
  const fields stored =
      make_fields({{"ETag", "\"a\""}, {"Last-Modified", date(t0)}, {"Content-Length", "5"}});
  EXPECT_EQ(check_head_update(stored, make_fields({{"ETag", "\"a\""}, {"Content-Length", "5"}}), 5),
            head_update::update);
  EXPECT_EQ(check_head_update(stored, make_fields({{"ETag", "\"b\""}}), 5),
            head_update::mark_stale);
  EXPECT_EQ(check_head_update(stored, make_fields({{"Last-Modified", date(t0 + 1s)}}), 5),
            head_update::mark_stale);
  EXPECT_EQ(check_head_update(stored, make_fields({{"Content-Length", "6"}}), 5),
            head_update::mark_stale);
  EXPECT_EQ(check_head_update(stored, make_fields({{"Content-Length", "x"}}), 5),
            head_update::mark_stale);
  EXPECT_EQ(check_head_update(stored, fields{}, 5), head_update::update);
  EXPECT_EQ(check_head_update(fields{}, make_fields({{"ETag", "\"a\""}}), 5),
            head_update::mark_stale);
}

TEST(caching_conditional, if_none_match_uses_weak_comparison) {
  const fields strong = make_fields({{"ETag", "\"abcdef\""}, {"Last-Modified", date(t0)}});
  const fields weak = make_fields({{"ETag", "W/\"abcdef\""}});
  const auto eval = [](const fields& stored, std::string_view inm, http::method m = method::get) {
    return evaluate_conditional(m, make_fields({{"If-None-Match", inm}}), stored, t0);
  };
  EXPECT_EQ(eval(strong, "\"abcdef\""), conditional_result::not_modified);
  EXPECT_EQ(eval(strong, "W/\"abcdef\""), conditional_result::not_modified);
  EXPECT_EQ(eval(weak, "W/\"abcdef\""), conditional_result::not_modified);
  EXPECT_EQ(eval(weak, "\"abcdef\""), conditional_result::not_modified);
  EXPECT_EQ(eval(strong, "\"abcdef\", \"1234\", \"5678\""), conditional_result::not_modified);
  EXPECT_EQ(eval(strong, "\"1234\", \"abcdef\", \"5678\""), conditional_result::not_modified);
  EXPECT_EQ(eval(strong, "\"1234\",\"5678\",\"abcdef\""), conditional_result::not_modified);
  EXPECT_EQ(eval(strong, "*"), conditional_result::not_modified);
  EXPECT_EQ(eval(strong, "\"abcdeg\""), conditional_result::full);
  EXPECT_EQ(eval(strong, "\"abc\", junk, \"abcdef\""), conditional_result::not_modified);
  EXPECT_EQ(eval(make_fields({{"ETag", "\"a,b\""}}), "\"x\", \"a,b\""),
            conditional_result::not_modified);
  EXPECT_EQ(eval(fields{}, "\"abcdef\""), conditional_result::full);
  EXPECT_EQ(eval(fields{}, "*"), conditional_result::not_modified);
  EXPECT_EQ(eval(strong, "\"abcdef\"", method::head), conditional_result::not_modified);
  EXPECT_EQ(eval(strong, "\"abcdef\"", method::post), conditional_result::full);
  // Obs-text in entity-tags.
  EXPECT_EQ(eval(make_fields({{"ETag", "\"abcdef\xc3\xbc\""}}), "\"abcdef\xc3\xbc\""),
            conditional_result::not_modified);
}

TEST(caching_conditional, if_none_match_takes_precedence_over_if_modified_since) {
  const fields stored = make_fields({{"ETag", "\"abcdef\""}, {"Last-Modified", date(t0 - 5000s)}});
  EXPECT_EQ(evaluate_conditional(method::get,
                                 make_fields({{"If-None-Match", "\"abcdef\""},
                                              {"If-Modified-Since", date(t0 - 10000s)}}),
                                 stored, t0),
            conditional_result::not_modified);
  EXPECT_EQ(evaluate_conditional(
                method::get,
                make_fields({{"If-None-Match", "\"other\""}, {"If-Modified-Since", date(t0)}}),
                stored, t0),
            conditional_result::full);
}

TEST(caching_conditional, if_modified_since) {
  const fields stored = make_fields({{"Last-Modified", date(t0 - 3000s)}, {"Date", date(t0)}});
  const auto eval = [&](std::string_view ims, const fields& s) {
    return evaluate_conditional(method::get, make_fields({{"If-Modified-Since", ims}}), s, t0);
  };
  EXPECT_EQ(eval(date(t0 - 3000s), stored), conditional_result::not_modified);
  EXPECT_EQ(eval(date(t0 - 2000s), stored), conditional_result::not_modified);
  EXPECT_EQ(eval(date(t0 - 3001s), stored), conditional_result::full);
  EXPECT_EQ(eval("garbage", stored), conditional_result::full);
  // rfc850-date is a valid HTTP-date.
  EXPECT_EQ(eval("Sunday, 06-Nov-94 07:59:37 GMT", stored), conditional_result::not_modified);
  // No Last-Modified: the stored Date.
  const fields no_lm = make_fields({{"Date", date(t0)}});
  EXPECT_EQ(eval(date(t0 - 3000s), no_lm), conditional_result::full);
  EXPECT_EQ(eval(date(t0), no_lm), conditional_result::not_modified);
  EXPECT_EQ(eval(date(t0), fields{}), conditional_result::full);
  // Two lines: ignored. Other methods: ignored.
  EXPECT_EQ(evaluate_conditional(
                method::get,
                make_fields({{"If-Modified-Since", date(t0)}, {"If-Modified-Since", date(t0)}}),
                stored, t0),
            conditional_result::full);
  EXPECT_EQ(
      evaluate_conditional(method::put, make_fields({{"If-Modified-Since", date(t0)}}), stored, t0),
      conditional_result::full);
  EXPECT_EQ(evaluate_conditional(method::get, fields{}, stored, t0), conditional_result::full);
}

TEST(caching_conditional, not_modified_carries_the_required_fields) {
  const fields stored = make_fields({{"Cache-Control", "max-age=60"},
                                     {"Content-Type", "text/html"},
                                     {"Content-Length", "10"},
                                     {"Content-Location", "/a"},
                                     {"Date", date(t0)},
                                     {"ETag", "\"x\""},
                                     {"Expires", date(t0 + 60s)},
                                     {"Last-Modified", date(t0 - 1h)},
                                     {"Vary", "Accept"},
                                     {"Set-Cookie", "a=b"}});
  fields out;
  not_modified_fields(stored, out);
  EXPECT_EQ(names_of(out), (std::vector<std::string>{"Cache-Control", "Content-Location", "Date",
                                                     "ETag", "Expires", "Vary"}));
  fields lm;
  not_modified_fields(make_fields({{"Last-Modified", date(t0)}, {"Date", date(t0)}}), lm);
  EXPECT_EQ(names_of(lm), (std::vector<std::string>{"Last-Modified", "Date"}));
}

// --- invalidation
// ----------------------------------------------------------------------------------------

std::vector<std::string> invalidated(
    http::method m, int status, std::string_view target,
    std::initializer_list<std::pair<std::string_view, std::string_view>> h) {
  std::vector<std::string> out;
  for (const url& u : invalidated_uris(m, status, parse_url(target).value(), make_fields(h)))
    out.push_back(u.to_string());
  return out;
}

TEST(caching_invalidation, unsafe_methods_with_success_invalidate_the_target) {
  using v = std::vector<std::string>;
  for (method m : {method::post, method::put, method::delete_, method::patch, method::other})
    EXPECT_EQ(invalidated(m, 200, "http://a.example/x?q=1", {}), v{"http://a.example/x?q=1"});
  EXPECT_EQ(invalidated(method::post, 303, "http://a/x", {}), v{"http://a/x"});
  EXPECT_EQ(invalidated(method::post, 204, "http://a/x#frag", {}), v{"http://a/x"});
  for (int status : {100, 404, 500, 503})
    EXPECT_TRUE(invalidated(method::post, status, "http://a/x", {}).empty()) << status;
  for (method m : {method::get, method::head, method::options, method::trace})
    EXPECT_TRUE(invalidated(m, 200, "http://a/x", {}).empty());
}

TEST(caching_invalidation, location_and_content_location_of_the_same_origin) {
  using v = std::vector<std::string>;
  EXPECT_EQ(invalidated(method::post, 201, "http://a.example/dir/x",
                        {{"Location", "y"}, {"Content-Location", "/z?k=1#f"}}),
            (v{"http://a.example/dir/x", "http://a.example/dir/y", "http://a.example/z?k=1"}));
  EXPECT_EQ(invalidated(method::put, 200, "http://a.example/x",
                        {{"Location", "http://a.example:80/y"}, {"Content-Location", ""}}),
            (v{"http://a.example/x", "http://a.example:80/y"}));
  // Another origin (host, scheme or port) is ignored.
  for (std::string_view loc : {"http://b.example/y", "https://a.example/y",
                               "http://a.example:8080/y", "//evil.example/y", "not a uri"})
    EXPECT_EQ(invalidated(method::post, 200, "http://a.example/x", {{"Location", loc}}),
              v{"http://a.example/x"})
        << loc;
}

// --- Cache-Status
// ----------------------------------------------------------------------------------------

TEST(caching_cache_status, formats_rfc_9211_members) {
  EXPECT_EQ(format_cache_status("trellis", {.hit = true, .ttl = 376s}), "trellis; hit; ttl=376");
  EXPECT_EQ(format_cache_status("trellis", {.fwd = cache_fwd::uri_miss, .stored = true}),
            "trellis; fwd=uri-miss; stored");
  EXPECT_EQ(
      format_cache_status("trellis", {.fwd = cache_fwd::stale, .fwd_status = 304, .ttl = -5s}),
      "trellis; fwd=stale; fwd-status=304; ttl=-5");
  EXPECT_EQ(format_cache_status("trellis", {.fwd = cache_fwd::miss, .collapsed = true}),
            "trellis; fwd=miss; collapsed");
  EXPECT_EQ(format_cache_status("trellis", {.fwd = cache_fwd::bypass, .detail = "no-store"}),
            "trellis; fwd=bypass; detail=no-store");
  EXPECT_EQ(format_cache_status(
                "edge", {.fwd = cache_fwd::vary_miss, .key = "/a\"b\\c", .detail = "two words"}),
            "edge; fwd=vary-miss; key=\"/a\\\"b\\\\c\"; detail=\"two words\"");
  // A hit has no fwd, stored or collapsed.
  EXPECT_EQ(format_cache_status("trellis", {.hit = true, .fwd = cache_fwd::stale, .stored = true}),
            "trellis; hit");
  EXPECT_EQ(format_cache_status("trellis", {}), "trellis");
  // Names that are not sf-tokens become sf-strings.
  EXPECT_EQ(format_cache_status("My Cache", {.hit = true}), "\"My Cache\"; hit");
  EXPECT_EQ(format_cache_status("1cache", {.hit = true}), "\"1cache\"; hit");
  EXPECT_EQ(format_cache_status("cdn.example:edge/1", {.hit = true}), "cdn.example:edge/1; hit");
  EXPECT_EQ(format_cache_status("caf\xc3\xa9", {.hit = true}), "\"caf??\"; hit");
}

TEST(caching_cache_status, fwd_tokens) {
  EXPECT_EQ(to_string(cache_fwd::none), "");
  EXPECT_EQ(to_string(cache_fwd::bypass), "bypass");
  EXPECT_EQ(to_string(cache_fwd::method), "method");
  EXPECT_EQ(to_string(cache_fwd::uri_miss), "uri-miss");
  EXPECT_EQ(to_string(cache_fwd::vary_miss), "vary-miss");
  EXPECT_EQ(to_string(cache_fwd::miss), "miss");
  EXPECT_EQ(to_string(cache_fwd::request), "request");
  EXPECT_EQ(to_string(cache_fwd::stale), "stale");
  EXPECT_EQ(to_string(cache_fwd::partial), "partial");
}

}  // namespace
}  // namespace trellis::http
