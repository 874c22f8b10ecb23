// net/cluster.hpp: what a user writes for a multi-node run. Cluster files (comments, blank
// lines, CRLF, a bad line named by its number, absurd sizes), the options' validation, and
// key files (round trip, never overwritten or written through a link, readable by the owner
// only, every way of being malformed named).
#include "sluice/net/cluster.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::net;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// The error of `r`, which must have failed.
template <class T>
error failure(const result<T>& r) {
  BOOST_REQUIRE_MESSAGE(!r.has_value(), "expected an error");
  return r.error();
}

void require_error(const error& e, error_code code, std::vector<std::string> parts) {
  BOOST_TEST((e.code == code), e.to_string());
  for (const auto& p : parts)
    BOOST_TEST(contains(e.message, p), "'" << p << "' not in: " << e.message);
}

cluster_options three_nodes() {
  cluster_options o;
  o.nodes = {"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"};
  o.node = 1;
  return o;
}

void write_file(const fs::path& p, const std::string& text, fs::perms mode) {
  std::ofstream{p, std::ios::binary} << text;
  fs::permissions(p, mode);
}

constexpr auto owner_only = fs::perms::owner_read | fs::perms::owner_write;

curve_keypair new_keys() {
  auto keys = make_curve_keypair();
  BOOST_REQUIRE_MESSAGE(keys.has_value(), (keys ? "" : keys.error().to_string()));
  return *keys;
}

} // namespace

BOOST_AUTO_TEST_SUITE(cluster_suite)

BOOST_AUTO_TEST_CASE(a_cluster_file_skips_comments_and_blank_lines_and_trims_entries) {
  test::temp_dir dir;
  const auto file = dir.write("cluster",
                              "# the coordinator first\n"
                              "\n"
                              "  127.0.0.1:7000  \n"
                              "\t# node 1 is on another machine\n"
                              "10.0.0.2:7001\t\n"
                              "   \n"
                              "[::1]:7002\n");
  auto nodes = read_cluster_file(file);
  BOOST_REQUIRE_MESSAGE(nodes.has_value(), (nodes ? "" : nodes.error().to_string()));
  BOOST_TEST((*nodes == std::vector<std::string>{"127.0.0.1:7000", "10.0.0.2:7001", "[::1]:7002"}));
}

BOOST_AUTO_TEST_CASE(a_cluster_file_with_crlf_line_ends_reads_as_with_lf) {
  test::temp_dir dir;
  const auto file = dir.write("cluster", "# nodes\r\n127.0.0.1:7000\r\n\r\n127.0.0.1:7001\r\n");
  auto nodes = read_cluster_file(file);
  BOOST_REQUIRE_MESSAGE(nodes.has_value(), (nodes ? "" : nodes.error().to_string()));
  BOOST_TEST((*nodes == std::vector<std::string>{"127.0.0.1:7000", "127.0.0.1:7001"}));
  // The last line without a line end counts too.
  nodes = read_cluster_file(dir.write("no-final-newline", "127.0.0.1:7000\n127.0.0.1:7001"));
  BOOST_REQUIRE(nodes.has_value());
  BOOST_TEST(nodes->size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_bad_line_is_named_with_its_number_counting_comments_and_blanks) {
  test::temp_dir dir;
  const auto file = dir.write("cluster", "# nodes\n127.0.0.1:7000\n\nlocalhost\n127.0.0.1:7002\n");
  require_error(failure(read_cluster_file(file)), error_code::invalid_option,
                {file.string(), "line 4", "'localhost'", "host:port"});
  // With CRLF the line is named without its '\r'.
  const auto crlf = dir.write("crlf", "127.0.0.1:7000\r\n127.0.0.1:x\r\n");
  auto e = failure(read_cluster_file(crlf));
  require_error(e, error_code::invalid_option, {"line 2", "'127.0.0.1:x'"});
  BOOST_TEST(!contains(e.message, "\r"));
}

BOOST_AUTO_TEST_CASE(ports_outside_1_to_65535_are_refused) {
  test::temp_dir dir;
  for (const std::string port : {"0", "70000", "65536", "-1", "+80", "80x", ""}) {
    BOOST_TEST_CONTEXT("port '" << port << "'") {
      const auto file = dir.write("cluster", "127.0.0.1:7000\nhost:" + port + "\n");
      require_error(failure(read_cluster_file(file)), error_code::invalid_option,
                    {"line 2", "'host:" + port + "'", "port in 1..65535"});
    }
  }
  auto ok = read_cluster_file(dir.write("edges", "h:1\nh:65535\n"));
  BOOST_TEST(ok.has_value());
}

BOOST_AUTO_TEST_CASE(an_empty_or_comment_only_file_lists_no_node) {
  test::temp_dir dir;
  for (const std::string text : {"", "\n\n", "# nobody\n  \r\n"}) {
    const auto file = dir.write("cluster", text);
    require_error(failure(read_cluster_file(file)), error_code::invalid_option,
                  {file.string(), "lists no node"});
  }
}

BOOST_AUTO_TEST_CASE(a_missing_cluster_file_is_an_io_error_naming_it) {
  test::temp_dir dir;
  const auto file = dir.path / "nowhere";
  require_error(failure(read_cluster_file(file)), error_code::io_error,
                {file.string(), "cannot be read"});
}

BOOST_AUTO_TEST_CASE(a_directory_is_not_a_cluster_file) {
  test::temp_dir dir;
  require_error(failure(read_cluster_file(dir.path)), error_code::io_error,
                {dir.path.string(), "not a regular file"});
}

BOOST_AUTO_TEST_CASE(an_absurdly_long_line_or_file_is_refused_before_it_is_read_whole) {
  test::temp_dir dir;
  const auto file = dir.write("cluster", "127.0.0.1:7000\n" + std::string(100'000, 'a') + ":1\n");
  require_error(failure(read_cluster_file(file)), error_code::invalid_option,
                {"line 2", "longer than"});
  // /dev/zero is one endless line: reading it must stop, not fill the memory.
  require_error(failure(read_cluster_file("/dev/zero")), error_code::io_error,
                {"/dev/zero", "not a regular file"});
  std::string many;
  for (int i = 0; i < 70'000; ++i)
    many += "127.0.0.1:" + std::to_string(1 + i % 60'000) + "\n";
  require_error(failure(read_cluster_file(dir.write("many", many))), error_code::invalid_option,
                {"larger than"});
}

BOOST_AUTO_TEST_CASE(valid_options_pass) {
  auto o = three_nodes();
  BOOST_TEST(o.validate().has_value());
  BOOST_TEST(o.enabled());
  BOOST_TEST(!cluster_options{}.enabled());
}

BOOST_AUTO_TEST_CASE(a_node_outside_the_cluster_is_refused_naming_the_range) {
  auto o = three_nodes();
  o.node = 3;
  require_error(failure(o.validate()), error_code::invalid_option,
                {"node 3", "cluster of 3 nodes", "0..2"});
  o.node = -1;
  require_error(failure(o.validate()), error_code::invalid_option, {"node -1", "0..2"});
  o.nodes = {"127.0.0.1:7000"};
  o.node = 1;
  require_error(failure(o.validate()), error_code::invalid_option, {"cluster of 1 node ", "0..0"});
  o.nodes.clear();
  o.node = 0;
  require_error(failure(o.validate()), error_code::invalid_option, {"no nodes"});
}

BOOST_AUTO_TEST_CASE(a_node_listed_twice_is_refused_naming_it) {
  auto o = three_nodes();
  o.nodes[2] = o.nodes[0];
  require_error(failure(o.validate()), error_code::invalid_option,
                {"node 2", "'127.0.0.1:7000'", "listed twice"});
}

BOOST_AUTO_TEST_CASE(an_entry_that_is_not_host_port_is_refused_naming_its_node) {
  auto o = three_nodes();
  o.nodes[1] = "127.0.0.1:0";
  require_error(failure(o.validate()), error_code::invalid_option,
                {"node 1", "'127.0.0.1:0'", "1..65535"});
  o.nodes[1] = ":7001";
  require_error(failure(o.validate()), error_code::invalid_option, {"node 1", "':7001'"});
}

BOOST_AUTO_TEST_CASE(the_heartbeat_timeout_must_exceed_a_positive_interval) {
  using std::chrono::milliseconds;
  auto o = three_nodes();
  o.heartbeat_interval = milliseconds{1000};
  o.heartbeat_timeout = milliseconds{1000};
  require_error(failure(o.validate()), error_code::invalid_option,
                {"heartbeat timeout (1000 ms)", "must exceed the interval (1000 ms)"});
  o.heartbeat_timeout = milliseconds{500};
  require_error(failure(o.validate()), error_code::invalid_option, {"timeout (500 ms)"});
  o.heartbeat_interval = milliseconds{0};
  o.heartbeat_timeout = milliseconds{10'000};
  require_error(failure(o.validate()), error_code::invalid_option,
                {"heartbeat interval must be positive", "got 0 ms"});
  o.heartbeat_interval = milliseconds{-5};
  require_error(failure(o.validate()), error_code::invalid_option, {"got -5 ms"});
  o.heartbeat_interval = milliseconds{1000};
  o.heartbeat_timeout = milliseconds{-10'000};
  require_error(failure(o.validate()), error_code::invalid_option,
                {"heartbeat timeout must be positive", "got -10000 ms"});
  o.heartbeat_timeout = milliseconds{1001};
  BOOST_TEST(o.validate().has_value());
}

BOOST_AUTO_TEST_CASE(the_digest_follows_the_node_list_and_its_order) {
  const std::vector<std::string> a{"127.0.0.1:7000", "127.0.0.1:7001"};
  const std::vector<std::string> b{"127.0.0.1:7001", "127.0.0.1:7000"};
  BOOST_TEST(cluster_digest(a) == cluster_digest(a));
  BOOST_TEST(cluster_digest(a) != cluster_digest(b));
  // The entries are not run together: {"a:1", "1:2"} is not {"a:11:2"}.
  BOOST_TEST(cluster_digest({"a:1", "1:2"}) != cluster_digest({"a:11:2"}));
  BOOST_TEST(cluster_digest(a).size() == 16u);
}

BOOST_AUTO_TEST_CASE(a_key_file_round_trips_and_is_readable_by_its_owner_only) {
  test::temp_dir dir;
  const auto file = dir.path / "cluster.key";
  auto written = write_key_file(file);
  BOOST_REQUIRE_MESSAGE(written.has_value(), (written ? "" : written.error().to_string()));
  BOOST_TEST(is_z85_key(written->public_key));
  BOOST_TEST(is_z85_key(written->secret_key));
  BOOST_TEST(((fs::status(file).permissions() & fs::perms::all) == owner_only));
  const auto text = test::read_text(file);
  BOOST_TEST(text == "public-key=" + written->public_key + "\nsecret-key=" + written->secret_key +
                       "\n");
  auto read = read_key_file(file);
  BOOST_REQUIRE_MESSAGE(read.has_value(), (read ? "" : read.error().to_string()));
  BOOST_TEST(read->public_key == written->public_key);
  BOOST_TEST(read->secret_key == written->secret_key);
  // Two keys are two keys.
  auto other = write_key_file(dir.path / "other.key");
  BOOST_REQUIRE(other.has_value());
  BOOST_TEST(other->secret_key != written->secret_key);
}

BOOST_AUTO_TEST_CASE(an_existing_key_file_is_never_overwritten) {
  test::temp_dir dir;
  const auto file = dir.path / "cluster.key";
  auto first = write_key_file(file);
  BOOST_REQUIRE(first.has_value());
  const auto before = test::read_text(file);
  require_error(failure(write_key_file(file)), error_code::io_error,
                {file.string(), "exists already"});
  BOOST_TEST(test::read_text(file) == before);
  // Nor any other file in its place.
  const auto plain = dir.write("notes.txt", "keep me\n");
  require_error(failure(write_key_file(plain)), error_code::io_error, {"exists already"});
  BOOST_TEST(test::read_text(plain) == "keep me\n");
}

BOOST_AUTO_TEST_CASE(a_key_is_never_written_through_a_symbolic_link) {
  // A link to a file that does not exist yet: following it would put the cluster's secret
  // wherever the link points, with whatever mode that place gets.
  test::temp_dir dir;
  const auto target = dir.path / "elsewhere";
  const auto link = dir.path / "cluster.key";
  fs::create_symlink(target, link);
  require_error(failure(write_key_file(link)), error_code::io_error, {link.string()});
  BOOST_TEST(!fs::exists(target));
}

BOOST_AUTO_TEST_CASE(a_key_file_in_a_missing_directory_is_an_io_error) {
  test::temp_dir dir;
  const auto file = dir.path / "no" / "such" / "cluster.key";
  require_error(failure(write_key_file(file)), error_code::io_error,
                {file.string(), "cannot be written"});
}

BOOST_AUTO_TEST_CASE(a_key_file_others_may_read_is_refused_naming_its_mode) {
  test::temp_dir dir;
  const auto file = dir.path / "cluster.key";
  auto keys = write_key_file(file);
  BOOST_REQUIRE(keys.has_value());
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write |
                          fs::perms::group_read | fs::perms::others_read);
  require_error(failure(read_key_file(file)), error_code::invalid_option,
                {file.string(), "mode 644", "chmod 600"});
  fs::permissions(file, fs::perms::owner_read | fs::perms::group_write);
  require_error(failure(read_key_file(file)), error_code::invalid_option, {"mode 420"});
  fs::permissions(file, fs::perms::owner_read);
  BOOST_TEST(read_key_file(file).has_value()); // 0400 is fine
}

BOOST_AUTO_TEST_CASE(a_key_file_missing_a_line_is_refused_naming_the_line) {
  test::temp_dir dir;
  const auto keys = new_keys();
  const auto no_secret = dir.path / "no-secret";
  write_file(no_secret, "public-key=" + keys.public_key + "\n", owner_only);
  require_error(failure(read_key_file(no_secret)), error_code::invalid_option,
                {no_secret.string(), "no secret-key line"});
  const auto no_public = dir.path / "no-public";
  write_file(no_public, "secret-key=" + keys.secret_key + "\n", owner_only);
  require_error(failure(read_key_file(no_public)), error_code::invalid_option,
                {"no public-key line"});
  const auto empty = dir.path / "empty";
  write_file(empty, "", owner_only);
  require_error(failure(read_key_file(empty)), error_code::invalid_option, {"no public-key line"});
  const auto missing = dir.path / "missing";
  require_error(failure(read_key_file(missing)), error_code::io_error,
                {missing.string(), "cannot be read"});
}

BOOST_AUTO_TEST_CASE(crlf_and_comments_in_a_key_file_are_accepted_other_lines_are_not) {
  test::temp_dir dir;
  const auto keys = new_keys();
  const auto file = dir.path / "crlf";
  write_file(file,
             "# made for the test\r\npublic-key=" + keys.public_key + "\r\n\r\nsecret-key=" +
               keys.secret_key + "\r\n",
             owner_only);
  auto read = read_key_file(file);
  BOOST_REQUIRE_MESSAGE(read.has_value(), (read ? "" : read.error().to_string()));
  BOOST_TEST(read->secret_key == keys.secret_key);
  const auto odd = dir.path / "odd";
  write_file(odd, "public-key=" + keys.public_key + "\nsecret-key=" + keys.secret_key +
                    "\nkey-type=curve\n",
             owner_only);
  require_error(failure(read_key_file(odd)), error_code::invalid_option, {"unexpected line"});
}

BOOST_AUTO_TEST_CASE(a_key_that_is_not_z85_is_refused) {
  test::temp_dir dir;
  const auto keys = new_keys();
  const std::vector<std::pair<std::string, std::string>> bad_public{
    {keys.public_key.substr(0, 39), "39 characters"},
    {keys.public_key + "A", "41 characters"},
    {std::string(40, '~'), "'~' is not in Z85's alphabet"},
    {std::string(40, ' '), "spaces"},
    // Five '#' decode to 85^5 - 1, more than 32 bits hold.
    {std::string(40, '#'), "a group that overflows 32 bits"},
  };
  for (const auto& [key, why] : bad_public) {
    BOOST_TEST_CONTEXT(why) {
      BOOST_TEST(!is_z85_key(key));
      const auto file = dir.path / "bad";
      fs::remove(file);
      write_file(file, "public-key=" + key + "\nsecret-key=" + keys.secret_key + "\n",
                 owner_only);
      require_error(failure(read_key_file(file)), error_code::invalid_option,
                    {file.string(), "public-key is not 40 characters of Z85"});
    }
  }
  const auto file = dir.path / "bad-secret";
  write_file(file, "public-key=" + keys.public_key + "\nsecret-key=" + std::string(40, '~') + "\n",
             owner_only);
  require_error(failure(read_key_file(file)), error_code::invalid_option,
                {"secret-key is not 40 characters of Z85"});
}

BOOST_AUTO_TEST_CASE(a_public_key_that_does_not_belong_to_the_secret_key_is_refused) {
  test::temp_dir dir;
  const auto a = new_keys(), b = new_keys();
  const auto file = dir.path / "mixed";
  write_file(file, "public-key=" + a.public_key + "\nsecret-key=" + b.secret_key + "\n",
             owner_only);
  require_error(failure(read_key_file(file)), error_code::invalid_option,
                {file.string(), "public-key does not belong to secret-key"});
}

BOOST_AUTO_TEST_CASE(a_key_file_given_twice_the_same_key_line_is_refused) {
  // Two public-key lines: which one is meant? Taking the last in silence hides an edit
  // gone wrong.
  test::temp_dir dir;
  const auto a = new_keys(), b = new_keys();
  const auto file = dir.path / "twice";
  write_file(file,
             "public-key=" + b.public_key + "\npublic-key=" + a.public_key +
               "\nsecret-key=" + a.secret_key + "\n",
             owner_only);
  require_error(failure(read_key_file(file)), error_code::invalid_option,
                {file.string(), "public-key", "twice"});
}

BOOST_AUTO_TEST_CASE(a_key_file_that_is_not_a_small_regular_file_is_refused) {
  test::temp_dir dir;
  const auto big = dir.path / "big";
  write_file(big, std::string(1 << 20, '#'), owner_only);
  require_error(failure(read_key_file(big)), error_code::invalid_option,
                {big.string(), "larger than"});
  const auto sub = dir.path / "sub";
  fs::create_directory(sub);
  fs::permissions(sub, fs::perms::owner_all);
  require_error(failure(read_key_file(sub)), error_code::io_error, {"not a regular file"});
}

BOOST_AUTO_TEST_SUITE_END()
