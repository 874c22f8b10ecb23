#define BOOST_TEST_MODULE cluster_tools_test
// tools/: sluice-cluster-key, run as a user runs it. The file it writes is read back with
// net::read_key_file (as a node given --cluster-key reads it); a second run refuses to
// replace it.
#include "sluice/net/cluster.hpp"
#include "sluice/tests/common/child_process.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <string>

#ifndef SLUICE_CLUSTER_KEY_BIN
#error "SLUICE_CLUSTER_KEY_BIN must name the sluice-cluster-key program"
#endif

namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(cluster_key_tool)

BOOST_AUTO_TEST_CASE(it_writes_a_key_file_a_node_can_read) {
  sluice::test::temp_dir dir;
  const auto file = dir.path / "cluster.key";
  auto o = sluice::test::run_to_exit({SLUICE_CLUSTER_KEY_BIN, file.string()});
  BOOST_REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  BOOST_TEST(((fs::status(file).permissions() & fs::perms::all) ==
              (fs::perms::owner_read | fs::perms::owner_write)));
  auto keys = sluice::net::read_key_file(file);
  BOOST_REQUIRE_MESSAGE(keys.has_value(), (keys ? "" : keys.error().to_string()));
  // It prints the public key, never the secret one.
  BOOST_TEST(contains(o.out, keys->public_key), o.out);
  BOOST_TEST(!contains(o.out + o.err, keys->secret_key));
}

BOOST_AUTO_TEST_CASE(it_refuses_an_existing_file_and_leaves_it_alone) {
  sluice::test::temp_dir dir;
  const auto file = dir.path / "cluster.key";
  BOOST_REQUIRE(sluice::test::run_to_exit({SLUICE_CLUSTER_KEY_BIN, file.string()}).exit_code == 0);
  const auto before = sluice::test::read_text(file);
  auto o = sluice::test::run_to_exit({SLUICE_CLUSTER_KEY_BIN, file.string()});
  BOOST_TEST(o.exit_code == 1);
  BOOST_TEST(contains(o.err, file.string()), o.err);
  BOOST_TEST(contains(o.err, "exists already"), o.err);
  BOOST_TEST(sluice::test::read_text(file) == before);
}

BOOST_AUTO_TEST_CASE(it_names_a_directory_it_cannot_write_in) {
  sluice::test::temp_dir dir;
  const auto file = dir.path / "missing" / "cluster.key";
  auto o = sluice::test::run_to_exit({SLUICE_CLUSTER_KEY_BIN, file.string()});
  BOOST_TEST(o.exit_code == 1);
  BOOST_TEST(contains(o.err, file.string()), o.err);
  BOOST_TEST(contains(o.err, "cannot be written"), o.err);
}

BOOST_AUTO_TEST_CASE(it_needs_a_file) {
  auto o = sluice::test::run_to_exit({SLUICE_CLUSTER_KEY_BIN});
  BOOST_TEST(o.exit_code != 0);
  BOOST_TEST(contains(o.err, "FILE"), o.err);
}

BOOST_AUTO_TEST_SUITE_END()
