// The nexmark_test binary: its suites live in the other files of this folder.
#define BOOST_TEST_MODULE nexmark
#include <boost/test/unit_test.hpp>
