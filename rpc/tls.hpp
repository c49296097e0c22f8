// Self-signed certificates: the manager's TCP port (`cohort-manager init --tls`; clients trust it
// with `--ca FILE` or COHORT_CA, which `cohort up` writes into DIR/env), and every runner's
// PeerService (its certificate reaches the other nodes of a job through the manager, pinned).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cohort/status.hpp"

namespace cohort::rpc {

// An ECDSA P-256 key and a certificate named `common_name`, valid for `dns_names` and
// `ip_addresses` for ten years, written 0600 (key) and 0644 (certificate), each replaced whole.
Status generate_self_signed(const std::filesystem::path& cert, const std::filesystem::path& key,
                            const std::string& common_name, const std::vector<std::string>& dns_names,
                            const std::vector<std::string>& ip_addresses);

// Whether `certificate_pem` parses and holds the public half of `key_pem`.
bool is_key_pair(const std::string& certificate_pem, const std::string& key_pem);

}  // namespace cohort::rpc
