// Key hashing: equal keys land in the same key group whatever their padding bytes or the
// sign of their zeros; key types whose bytes are not their value are refused at compile
// time; and every key the old rules hashed keeps its key group (checkpoints depend on it).
#define BOOST_TEST_MODULE key_group_test
#include <boost/test/unit_test.hpp>

#include "sluice/core/key_group.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <vector>

using namespace sluice;

namespace {

/// Padding between `tag` and `id` (and none after): equal keys can differ in 7 bytes.
struct padded {
  std::int8_t tag = 0;
  std::int64_t id = 0;
  friend bool operator==(const padded&, const padded&) = default;
};
template <class Inspector>
bool inspect(Inspector& f, padded& x) {
  return f.object("padded").fields(f.field("tag", x.tag), f.field("id", x.id));
}

/// The same shape without inspect(): it must not compile as a key.
struct padded_bare {
  std::int8_t tag = 0;
  std::int64_t id = 0;
};

/// A padded key with a key_hash specialization of its own: accepted.
struct padded_special {
  std::int8_t tag = 0;
  std::int64_t id = 0;
};

/// No padding, but a double: -0.0 and +0.0 are equal keys with different bytes.
struct located {
  std::int64_t id = 0;
  double x = 0;
  friend bool operator==(const located&, const located&) = default;
};
template <class Inspector>
bool inspect(Inspector& f, located& x) {
  return f.object("located").fields(f.field("id", x.id), f.field("x", x.x));
}

/// Every byte is value: hashed as its bytes, as before.
struct pair32 {
  std::int32_t a = 0;
  std::int32_t b = 0;
};

/// Nested, with strings, optionals and vectors.
struct composite {
  std::string name;
  std::optional<double> weight;
  std::vector<padded> parts;
  friend bool operator==(const composite&, const composite&) = default;
};
template <class Inspector>
bool inspect(Inspector& f, composite& x) {
  return f.object("composite")
    .fields(f.field("name", x.name), f.field("weight", x.weight), f.field("parts", x.parts));
}

/// `T{fields}` built in storage whose every byte was `fill` first, so its padding holds
/// `fill`.
template <class T, class Init>
T with_padding(unsigned char fill, Init init) {
  alignas(T) unsigned char raw[sizeof(T)];
  std::memset(raw, fill, sizeof raw);
  T* p = new (raw) T; // default-initialized members, padding bytes left as they were
  init(*p);
  T copy;
  std::memcpy(static_cast<void*>(&copy), raw, sizeof(T)); // the padding travels with it
  return copy;
}

template <class K>
int group(const K& k) {
  return key_group_of(key_hash<K>{}(k), default_max_key_groups);
}

} // namespace

template <>
struct sluice::key_hash<padded_special> {
  std::uint64_t operator()(const padded_special& k) const noexcept {
    return mix64(static_cast<std::uint64_t>(k.id) * 31 + static_cast<std::uint64_t>(k.tag));
  }
};

// The compile-time rule: a padded struct without inspect() or a specialization is refused
// (key_by requires is_hashable_key_v, and key_hash<K> static_asserts it).
static_assert(!is_hashable_key_v<padded_bare>);
static_assert(!is_hashable_key_v<long double>);
static_assert(is_hashable_key_v<padded>);
static_assert(is_hashable_key_v<padded_special>);
static_assert(is_hashable_key_v<located>);
static_assert(is_hashable_key_v<composite>);
static_assert(is_hashable_key_v<pair32>);
static_assert(is_hashable_key_v<int>);
static_assert(is_hashable_key_v<std::uint64_t>);
static_assert(is_hashable_key_v<std::string>);
static_assert(is_hashable_key_v<double>);
static_assert(is_hashable_key_v<float>);

BOOST_AUTO_TEST_SUITE(key_hashing)

BOOST_AUTO_TEST_CASE(padding_bytes_do_not_change_the_key_group) {
  const auto zeros = with_padding<padded>(0x00, [](padded& k) { k.tag = 3, k.id = 42; });
  const auto ones = with_padding<padded>(0xFF, [](padded& k) { k.tag = 3, k.id = 42; });
  BOOST_REQUIRE(zeros == ones);
  BOOST_REQUIRE_MESSAGE(std::memcmp(&zeros, &ones, sizeof(padded)) != 0,
                        "the two keys must differ in their padding for this test to mean anything");
  BOOST_TEST(key_hash<padded>{}(zeros) == key_hash<padded>{}(ones));
  BOOST_TEST(group(zeros) == group(ones));
  // Different values still hash apart.
  BOOST_TEST(key_hash<padded>{}(zeros) != key_hash<padded>{}(padded{3, 43}));
  BOOST_TEST(key_hash<padded>{}(zeros) != key_hash<padded>{}(padded{4, 42}));
}

BOOST_AUTO_TEST_CASE(signed_zeros_land_in_the_same_key_group) {
  BOOST_REQUIRE(0.0 == -0.0);
  BOOST_TEST(key_hash<double>{}(0.0) == key_hash<double>{}(-0.0));
  BOOST_TEST(key_hash<float>{}(0.0f) == key_hash<float>{}(-0.0f));
  BOOST_TEST(group(0.0) == group(-0.0));
  BOOST_TEST(group(located{7, 0.0}) == group(located{7, -0.0}));
  BOOST_TEST(key_hash<located>{}(located{7, 0.0}) == key_hash<located>{}(located{7, -0.0}));
  composite a{"w", 0.0, {padded{1, 2}}}, b{"w", -0.0, {padded{1, 2}}};
  BOOST_REQUIRE(a == b);
  BOOST_TEST(key_hash<composite>{}(a) == key_hash<composite>{}(b));
}

BOOST_AUTO_TEST_CASE(every_nan_hashes_alike) {
  // NaN != NaN, so a NaN key never finds its state again (docs/api.md); at least every
  // NaN goes to one key group, whatever its payload or sign.
  const double quiet = std::numeric_limits<double>::quiet_NaN();
  double negative = -quiet;
  double payload = 0;
  const std::uint64_t bits = 0x7ff0000000000123ULL; // a signalling NaN with a payload
  std::memcpy(&payload, &bits, sizeof payload);
  BOOST_REQUIRE(payload != payload);
  BOOST_TEST(key_hash<double>{}(quiet) == key_hash<double>{}(negative));
  BOOST_TEST(key_hash<double>{}(quiet) == key_hash<double>{}(payload));
  BOOST_TEST(key_hash<float>{}(std::numeric_limits<float>::quiet_NaN()) ==
             key_hash<float>{}(-std::numeric_limits<float>::quiet_NaN()));
}

BOOST_AUTO_TEST_CASE(fields_are_framed) {
  // Lengths are hashed with strings and vectors, so moving characters between fields or
  // elements changes the hash.
  BOOST_TEST(key_hash<composite>{}(composite{"ab", {}, {}}) !=
             key_hash<composite>{}(composite{"a", {}, {}}));
  BOOST_TEST(key_hash<composite>{}(composite{"", std::nullopt, {}}) !=
             key_hash<composite>{}(composite{"", 0.0, {}}));
  BOOST_TEST(key_hash<composite>{}(composite{"", {}, {padded{}}}) !=
             key_hash<composite>{}(composite{"", {}, {}}));
}

BOOST_AUTO_TEST_CASE(keys_the_old_rules_accepted_keep_their_key_groups) {
  // Pinned with the rules before this change (raw bytes for trivially copyable keys): a
  // checkpoint taken then must restore into the same key groups.
  BOOST_TEST(group(std::int64_t{7}) == 93);
  BOOST_TEST(group(12345) == 121);
  BOOST_TEST(group(std::string{"account-7"}) == 62);
  BOOST_TEST(key_hash<std::string>{}("account-7") == 0x3df7cd5ad2d8cb3eULL);
  BOOST_TEST(group(std::string_view{"account-7"}) == 62);
  BOOST_TEST(group(2.5) == 17);
  BOOST_TEST(key_hash<double>{}(2.5) == 0xdf606fb485b75391ULL);
  BOOST_TEST(group(2.5f) == 123);
  BOOST_TEST(group(0.0) == 89); // +0.0 keeps its group; -0.0 joins it
  BOOST_TEST(group(pair32{3, 4}) == 108);
  BOOST_TEST(key_hash<pair32>{}(pair32{3, 4}) == 0x124dfeb2d605286cULL);
  // A padding-free struct with a double, hashed field by field now: the same bytes, so the
  // same hash as its raw bytes were.
  BOOST_TEST(group(located{9, 1.25}) == 60);
  BOOST_TEST(key_hash<located>{}(located{9, 1.25}) == 0x7a16f84691ca03cULL);
}

BOOST_AUTO_TEST_SUITE_END()
