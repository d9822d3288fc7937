// result<T>: a value or the std::error_code saying why there is none.
//
// The return type of trellis's synchronous APIs (parsers, config loaders,
// file helpers) and of coroutines that report expected failures, in the
// spirit of C++23 std::expected<T, std::error_code>. A result is never
// "empty": it holds exactly one of the two. Reading the value of a result
// that holds an error is a bug; value() then throws std::system_error with
// that error, operator* asserts.
//
// Thread-safety: like any value type, one writer or many readers.
#pragma once

#include <cassert>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace trellis {

// Wraps an error for construction: `return unexpected(errc::x);` reads as
// intent at the return site and keeps result<std::error_code> unambiguous.
struct unexpected {
  std::error_code code;
  template <class E>
  requires std::is_error_code_enum_v<E> unexpected(E e) : code(make_error_code(e)) {}
  unexpected(std::error_code ec) : code(ec) {}
};

template <class T>
class [[nodiscard]] result {
 public:
  using value_type = T;

  // REQUIRES: nothing. A default-constructed result holds T{} (only when T
  // is default-constructible), which lets results live in arrays.
  result() requires std::is_default_constructible_v<T> : v_(std::in_place_index<0>) {}
  result(const T& v) : v_(std::in_place_index<0>, v) {}
  result(T&& v) : v_(std::in_place_index<0>, std::move(v)) {}
  template <class... A>
  explicit result(std::in_place_t, A&&... a) : v_(std::in_place_index<0>, std::forward<A>(a)...) {}
  // REQUIRES: `e.code` is an error (non-zero).
  result(unexpected e) : v_(std::in_place_index<1>, e.code) { assert(e.code); }

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // The error, or an empty (success) code when a value is held.
  std::error_code error() const noexcept {
    return has_value() ? std::error_code{} : std::get<1>(v_);
  }

  T& value() & {
    check();
    return std::get<0>(v_);
  }
  const T& value() const& {
    check();
    return std::get<0>(v_);
  }
  T&& value() && {
    check();
    return std::get<0>(std::move(v_));
  }

  T& operator*() & noexcept {
    assert(has_value());
    return *std::get_if<0>(&v_);
  }
  const T& operator*() const& noexcept {
    assert(has_value());
    return *std::get_if<0>(&v_);
  }
  T&& operator*() && noexcept {
    assert(has_value());
    return std::move(*std::get_if<0>(&v_));
  }
  T* operator->() noexcept {
    assert(has_value());
    return std::get_if<0>(&v_);
  }
  const T* operator->() const noexcept {
    assert(has_value());
    return std::get_if<0>(&v_);
  }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void check() const {
    if (!has_value()) throw std::system_error(std::get<1>(v_));
  }
  std::variant<T, std::error_code> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  using value_type = void;
  result() = default;
  result(unexpected e) : ec_(e.code) { assert(e.code); }

  bool has_value() const noexcept { return !ec_; }
  explicit operator bool() const noexcept { return has_value(); }
  std::error_code error() const noexcept { return ec_; }
  void value() const {
    if (ec_) throw std::system_error(ec_);
  }

 private:
  std::error_code ec_;
};

}  // namespace trellis
