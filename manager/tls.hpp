// TLS for the manager's TCP port: a self-signed certificate made by `cohort-manager init --tls`,
// or the operator's own (`serve --tls-cert --tls-key`). Clients trust it with `--ca FILE` or
// COHORT_CA; `cohort up` writes COHORT_CA into DIR/env when the state directory has one.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cohort/status.hpp"

namespace cohort::manager {

// An ECDSA P-256 key and a certificate valid for `dns_names` and `ip_addresses` for ten years,
// written 0600 (key) and 0644 (certificate).
Status generate_self_signed(const std::filesystem::path& cert, const std::filesystem::path& key,
                            const std::vector<std::string>& dns_names, const std::vector<std::string>& ip_addresses);

}  // namespace cohort::manager
