// The README's minimal example: prints the library version. Replaced by a real use of the
// cache once the codecs land.
#include <strata/version.hpp>
#include <cstdio>

int main() {
  std::printf("strata %s\n", strata::version_string);
  return 0;
}
