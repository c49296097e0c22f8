# Every dependency comes from Debian's packages (scripts/install-deps installs them).
find_package(MPI REQUIRED COMPONENTS C)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
if(COHORT_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# xxh3 checksums for checkpoints (libxxhash-dev ships no CMake package).
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(XXHASH_LIBRARY xxhash REQUIRED)

find_program(COHORT_MPIRUN NAMES mpirun REQUIRED)
