# One interface target carries the project's warning and sanitizer flags; every target of ours
# links it privately, so nothing leaks into a consumer of the installed package.
add_library(cohort_warnings INTERFACE)
target_compile_options(cohort_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wconversion -Wno-sign-conversion -Wno-missing-field-initializers>)
if(COHORT_SANITIZE)
  target_compile_options(cohort_warnings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(cohort_warnings INTERFACE -fsanitize=address,undefined)
endif()
