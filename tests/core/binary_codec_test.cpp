// The binary codec (core/codec/binary.hpp): its layout, the one-copy path, round trips,
// truncated and corrupt input.
#include <boost/test/unit_test.hpp>

#include "sluice/core/codec/binary.hpp"
#include "sluice/tests/core/codec_records.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

using namespace test_records;

namespace test_records {

/// Records for the one-copy path: `flat_pair` is its fields' bytes; the others are not.
struct flat_pair {
  std::uint64_t key = 0;
  point at;
  double value = 0;
};
template <class Inspector>
bool inspect(Inspector& f, flat_pair& x) {
  return f.object("flat_pair").fields(f.field("key", x.key), f.field("at", x.at),
                                      f.field("value", x.value));
}
struct padded {
  std::int32_t a = 0;
  std::int64_t b = 0; // 4 bytes of padding before it
};
template <class Inspector>
bool inspect(Inspector& f, padded& x) {
  return f.object("padded").fields(f.field("a", x.a), f.field("b", x.b));
}
struct reordered {
  std::int32_t a = 0;
  std::int32_t b = 0;
};
template <class Inspector>
bool inspect(Inspector& f, reordered& x) {
  return f.object("reordered").fields(f.field("b", x.b), f.field("a", x.a));
}
/// Names its members when `unit` is 0, else a scaled copy of `a`: not flat.
struct conditional {
  std::int32_t a = 0;
  std::int32_t unit = 0;
};
template <class Inspector>
bool inspect(Inspector& f, conditional& x) {
  if (x.unit == 0)
    return f.object("conditional").fields(f.field("a", x.a), f.field("unit", x.unit));
  auto scaled = x.a * x.unit; // writing only: this test never reads one back
  return f.object("conditional").fields(f.field("a", scaled), f.field("unit", x.unit));
}
struct partial {
  std::int32_t a = 0;
  std::int32_t unlisted = 0;
};
template <class Inspector>
bool inspect(Inspector& f, partial& x) {
  return f.object("partial").fields(f.field("a", x.a));
}

} // namespace test_records

BOOST_AUTO_TEST_SUITE(binary)

using sluice::codec::from_binary;
using sluice::codec::to_binary;

template <class T>
T round_trip(const T& in) {
  std::vector<std::byte> buf;
  to_binary(in, buf);
  std::span<const std::byte> view{buf};
  T out{};
  auto ok = from_binary(view, out);
  BOOST_TEST(ok.has_value());
  BOOST_TEST(view.empty());
  return out;
}

BOOST_AUTO_TEST_CASE(layout_is_little_endian_and_compact) {
  std::vector<std::byte> buf;
  to_binary(std::uint32_t{0x01020304}, buf);
  BOOST_REQUIRE(buf.size() == 4u);
  BOOST_TEST(std::to_integer<int>(buf[0]) == 4);
  BOOST_TEST(std::to_integer<int>(buf[3]) == 1);

  buf.clear();
  to_binary(std::string(300, 'x'), buf);
  BOOST_REQUIRE(buf.size() == 302u); // two-byte varint length
  BOOST_TEST(std::to_integer<int>(buf[0]) == 0xac);
  BOOST_TEST(std::to_integer<int>(buf[1]) == 0x02);

  buf.clear();
  to_binary(point{1, -1}, buf);
  BOOST_TEST(buf.size() == 8u);
  BOOST_TEST(std::to_integer<int>(buf[4]) == 0xff);

  // Appends rather than overwrites.
  to_binary(true, buf);
  BOOST_TEST(buf.size() == 9u);
}

/// Little-endian bytes of `v`, `n` of them: what the format says a number encodes to.
std::vector<std::byte> le(std::uint64_t v, std::size_t n) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
  return out;
}
std::vector<std::byte> cat(std::initializer_list<std::vector<std::byte>> parts) {
  std::vector<std::byte> out;
  for (auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

BOOST_AUTO_TEST_CASE(records_that_are_their_bytes_encode_the_same_in_one_copy) {
  using sluice::codec::detail::flat_layout;
  BOOST_TEST(flat_layout<point>());
  BOOST_TEST(flat_layout<flat_pair>());
  BOOST_TEST(!flat_layout<padded>());    // padding
  BOOST_TEST(!flat_layout<reordered>()); // fields out of memory order
  BOOST_TEST(!flat_layout<partial>());   // a member inspect() does not name
  BOOST_TEST(!flat_layout<conditional>()); // a copy, for values other than zero
  BOOST_TEST(!flat_layout<ints>());      // a bool, checked when read
  BOOST_TEST(!flat_layout<txn>());       // a string

  // Whichever path writes them, the bytes are the format's: fields in declared order.
  const flat_pair fp{0x0102030405060708, point{-2, 3}, 1.5};
  std::vector<std::byte> buf;
  to_binary(fp, buf);
  const auto fp_bytes = cat({le(0x0102030405060708, 8), le(0xfffffffe, 4), le(3, 4),
                             le(std::bit_cast<std::uint64_t>(1.5), 8)});
  BOOST_TEST((buf == fp_bytes));
  buf.clear();
  to_binary(reordered{1, 2}, buf);
  BOOST_TEST((buf == cat({le(2, 4), le(1, 4)})));
  buf.clear();
  to_binary(padded{-1, 7}, buf);
  BOOST_TEST((buf == cat({le(0xffffffff, 4), le(7, 8)})));
  buf.clear();
  to_binary(partial{5, 9}, buf);
  BOOST_TEST((buf == le(5, 4)));
  buf.clear();
  to_binary(conditional{3, 2}, buf);
  BOOST_TEST((buf == cat({le(6, 4), le(2, 4)})));

  // Vectors of numbers and of flat records: a count, then the elements' bytes.
  buf.clear();
  to_binary(std::vector<flat_pair>{fp, fp}, buf);
  BOOST_TEST((buf == cat({le(2, 1), fp_bytes, fp_bytes})));
  buf.clear();
  to_binary(std::vector<std::int16_t>{-1, 2}, buf);
  BOOST_TEST((buf == cat({le(2, 1), le(0xffff, 2), le(2, 2)})));
  const std::vector<flat_pair> many{fp, flat_pair{}, fp};
  auto back = round_trip(many);
  BOOST_REQUIRE(back.size() == 3u);
  BOOST_TEST(back[0].key == fp.key);
  BOOST_TEST((back[0].at == fp.at));
  BOOST_TEST(back[2].value == 1.5);
  BOOST_TEST((round_trip(std::vector<double>{0.25, -3}) == std::vector<double>{0.25, -3}));
}

BOOST_AUTO_TEST_CASE(vectors_of_flat_records_decode_in_one_copy_as_field_by_field) {
  // Decoding takes one copy for a vector of flat records or raw numbers: the values must be
  // those the fields' own reads give, the input consumed exactly, what follows left alone.
  std::vector<flat_pair> many;
  for (int i = 0; i < 100; ++i)
    many.push_back({0x0102030405060708u * static_cast<std::uint64_t>(i), point{-i, 3 * i}, i / 4.0});
  std::vector<std::byte> buf;
  to_binary(many, buf);
  to_binary(std::int32_t{77}, buf);
  std::span<const std::byte> in{buf};
  std::vector<flat_pair> back;
  BOOST_REQUIRE(from_binary(in, back).has_value());
  BOOST_REQUIRE_EQUAL(back.size(), many.size());
  std::span<const std::byte> one{buf};
  std::uint64_t count = 0;
  sluice::codec::detail::decode_error e;
  BOOST_REQUIRE(sluice::codec::detail::get_varint(one, count, e));
  for (std::size_t i = 0; i < many.size(); ++i) {
    flat_pair f; // read field by field, as the format defines it
    BOOST_REQUIRE(from_binary(one, f).has_value());
    BOOST_TEST(back[i].key == f.key);
    BOOST_TEST((back[i].at == f.at));
    BOOST_TEST(back[i].value == f.value);
    BOOST_TEST(back[i].key == many[i].key);
  }
  std::int32_t after = 0;
  BOOST_REQUIRE(from_binary(in, after).has_value());
  BOOST_TEST(after == 77);
  BOOST_TEST(in.empty());

  // Cut short, the error names the element and the field that are cut, as before.
  std::vector<std::byte> cut(buf.begin(), buf.begin() + 1 + 3 * 24 + 10);
  std::span<const std::byte> short_in{cut};
  auto r = from_binary(short_in, back);
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().message == "field '[3].at.x': truncated input: needed 4 bytes, 2 left");
  BOOST_TEST(short_in.size() == cut.size()); // unchanged on failure

  std::vector<std::int64_t> nums{1, -2, 3};
  BOOST_TEST((round_trip(nums) == nums));
  BOOST_TEST(round_trip(std::vector<std::int64_t>{}).empty());
}

BOOST_AUTO_TEST_CASE(round_trips) {
  BOOST_TEST((round_trip(sample_txn()) == sample_txn()));
  txn no_tag = sample_txn();
  no_tag.tag.reset();
  no_tag.ts = at(-123);
  BOOST_TEST((round_trip(no_tag) == no_tag));
  const shape s{.name = "tri",
                .origin = {1, -2},
                .vertices = {{0, 0}, {3, 0}, {0, 4}},
                .labels = {"a", "", std::string(200, 'z')},
                .anchor = point{5, 6},
                .flags = {true, false, true}};
  BOOST_TEST((round_trip(s) == s));
  ints x{.i8 = -128, .u8 = 255, .i16 = -32768, .u16 = 65535,
         .i32 = std::numeric_limits<std::int32_t>::min(), .u32 = 4'294'967'295u,
         .i64 = std::numeric_limits<std::int64_t>::min(),
         .u64 = std::numeric_limits<std::uint64_t>::max(), .b = true, .f = -0.1f};
  BOOST_TEST((round_trip(x) == x));
  BOOST_TEST(round_trip(std::string{"leaf"}) == "leaf");
  BOOST_TEST(round_trip(2.5) == 2.5);
}

BOOST_AUTO_TEST_CASE(consumes_records_one_after_another) {
  std::vector<std::byte> buf;
  to_binary(sample_txn(), buf);
  txn second = sample_txn();
  second.account_id = 99;
  to_binary(second, buf);
  std::span<const std::byte> view{buf};
  txn a;
  txn b;
  BOOST_REQUIRE(from_binary(view, a).has_value());
  BOOST_REQUIRE(from_binary(view, b).has_value());
  BOOST_TEST(view.empty());
  BOOST_TEST(a.account_id == 42);
  BOOST_TEST(b.account_id == 99);
}

BOOST_AUTO_TEST_CASE(truncated_input_at_every_length) {
  std::vector<std::byte> buf;
  to_binary(sample_txn(), buf);
  for (std::size_t n = 0; n < buf.size(); ++n) {
    std::span<const std::byte> view{buf.data(), n};
    txn out;
    auto r = from_binary(view, out);
    BOOST_TEST_INFO("length " << n);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == error_code::malformed_record));
    BOOST_TEST(contains(r.error().message, "truncated input"));
    BOOST_TEST(r.error().message.starts_with("field '"));
    BOOST_TEST(view.size() == n); // unchanged on failure
  }
  std::span<const std::byte> first8{buf.data(), 10};
  txn out;
  auto r = from_binary(first8, out);
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().message == "field 'amount': truncated input: needed 8 bytes, 2 left");
}

BOOST_AUTO_TEST_CASE(corrupt_input) {
  std::vector<std::byte> buf;
  to_binary(small{}, buf);
  to_binary(true, buf);
  std::vector<std::byte> bad_bool{std::byte{7}};
  std::span<const std::byte> v1{bad_bool};
  bool b = false;
  auto r1 = from_binary(v1, b);
  BOOST_REQUIRE(!r1.has_value());
  BOOST_TEST(r1.error().message == "invalid bool byte 7");

  std::vector<std::byte> bad_tag;
  to_binary(std::int64_t{1}, bad_tag);
  to_binary(1.0, bad_tag);
  to_binary(t0, bad_tag);
  to_binary(std::string{"m"}, bad_tag);
  bad_tag.push_back(std::byte{2});
  std::span<const std::byte> v2{bad_tag};
  txn t;
  auto r2 = from_binary(v2, t);
  BOOST_REQUIRE(!r2.has_value());
  BOOST_TEST(r2.error().message == "field 'tag': invalid optional tag byte 2");

  std::vector<std::byte> long_varint(11, std::byte{0xff});
  std::span<const std::byte> v3{long_varint};
  std::string s;
  auto r3 = from_binary(v3, s);
  BOOST_REQUIRE(!r3.has_value());
  BOOST_TEST(contains(r3.error().message, "varint"));

  // A huge element count must fail cleanly, not allocate.
  std::vector<std::byte> huge;
  sluice::codec::detail::put_varint(huge, std::numeric_limits<std::uint64_t>::max());
  std::span<const std::byte> v4{huge};
  std::vector<std::int64_t> vec;
  auto r4 = from_binary(v4, vec);
  BOOST_REQUIRE(!r4.has_value());
  BOOST_TEST(r4.error().message == "field '[0]': truncated input: needed 8 bytes, 0 left");

  std::vector<std::byte> nested;
  to_binary(std::string{"s"}, nested);
  to_binary(point{1, 2}, nested);
  sluice::codec::detail::put_varint(nested, 2);
  to_binary(point{1, 2}, nested);
  nested.push_back(std::byte{1});
  std::span<const std::byte> v5{nested};
  shape sh;
  auto r5 = from_binary(v5, sh);
  BOOST_REQUIRE(!r5.has_value());
  BOOST_TEST(r5.error().message == "field 'vertices[1].x': truncated input: needed 4 bytes, 1 left");
}

BOOST_AUTO_TEST_SUITE_END()
