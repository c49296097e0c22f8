#include "cohort/status.hpp"

#include <gtest/gtest.h>

namespace cohort {
namespace {

Result<int> half(int x) {
  if (x % 2 != 0) return invalid_argument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> quarter(int x) {
  COHORT_ASSIGN_OR_RETURN(int h, half(x));
  COHORT_ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

Status check_even(int x) {
  COHORT_TRY(half(x).status());
  return {};
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status().ok());
  Status s = invalid_argument("bad flag");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.to_string(), "InvalidArgument: bad flag");
  EXPECT_EQ(s.with_context("parsing").message(), "parsing: bad flag");
  EXPECT_TRUE(Status().with_context("ignored").ok());
}

TEST(StatusTest, PropagationMacros) {
  EXPECT_EQ(quarter(8).value(), 2);
  EXPECT_EQ(quarter(6).status().message(), "3 is odd");
  EXPECT_TRUE(check_even(4).ok());
  EXPECT_EQ(check_even(5).code(), Code::kInvalidArgument);
}

TEST(StatusTest, ResultFromOkStatusIsAnInternalError) {
  Result<int> r{Status()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInternal);
}

TEST(StatusTest, ErrnoStatusNamesTheCallAndMapsTheCode) {
  Status s = errno_status("open", ENOENT, "/no/such");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("open(/no/such)"), std::string::npos);
  EXPECT_EQ(errno_status("write", ENOSPC).code(), Code::kResourceExhausted);
  EXPECT_EQ(errno_status("open", EACCES).code(), Code::kPermissionDenied);
}

}  // namespace
}  // namespace cohort
