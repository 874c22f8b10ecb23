// sluice-cluster-key: makes the key file of a multi-node run (docs/cluster.md), the one
// every node is given with --cluster-key.
//
//   sluice-cluster-key FILE
//
// Writes a new CurveZMQ keypair to FILE (net::write_key_file: mode 0600 from its creation,
// two lines `public-key=...` and `secret-key=...`) and prints the public key. Refuses an
// existing FILE: a cluster's key is replaced on purpose (remove the old file first), never
// by a second run of this command. Exit status 0 on success, 1 when the file could not be
// written (the reason on stderr), 2 (CLI11) for a bad command line.
#include "sluice/net/cluster.hpp"

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  CLI::App app{"Writes a new key file for a multi-node Sluice job (--cluster-key FILE)"};
  std::string file;
  app.add_option("FILE", file, "the key file to create; it must not exist")->required();
  CLI11_PARSE(app, argc, argv);

  auto keys = sluice::net::write_key_file(file);
  if (!keys) {
    std::cerr << "sluice-cluster-key: " << keys.error().to_string() << "\n";
    return 1;
  }
  std::cout << "wrote " << file << " (mode 0600); public key " << keys->public_key << "\n"
            << "copy it to every node and start each with --cluster-key " << file << "\n";
  return 0;
}
