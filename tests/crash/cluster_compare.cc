// cluster_compare: checks that every cluster of a raw image equals the same cluster of
// either the "old" or the "new" raw image (the crash-consistency promise: after a failure
// or crash, each cluster reads the data from before or after the interrupted operations).
// Bytes past the end of a shorter file count as zeroes.
//
// Usage: cluster_compare RESULT OLD NEW CLUSTER_SIZE
// Exit 0: all clusters are old or new. Exit 1: the first cluster that is neither is named.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::vector<char> ReadAll(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cluster_compare: cannot read %s\n", path);
    std::exit(2);
  }
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

// Byte `i` of `data`, zero past its end.
char At(const std::vector<char>& data, size_t i) { return i < data.size() ? data[i] : 0; }

bool SameCluster(const std::vector<char>& a, const std::vector<char>& b, size_t start,
                 size_t len) {
  if (start + len <= a.size() && start + len <= b.size()) {
    return std::memcmp(a.data() + start, b.data() + start, len) == 0;
  }
  for (size_t i = start; i < start + len; ++i) {
    if (At(a, i) != At(b, i)) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: cluster_compare RESULT OLD NEW CLUSTER_SIZE\n");
    return 2;
  }
  const std::vector<char> result = ReadAll(argv[1]);
  const std::vector<char> old_data = ReadAll(argv[2]);
  const std::vector<char> new_data = ReadAll(argv[3]);
  const size_t cluster = std::strtoull(argv[4], nullptr, 0);
  if (cluster == 0) return 2;
  for (size_t start = 0; start < result.size(); start += cluster) {
    if (SameCluster(result, old_data, start, cluster)) continue;
    if (SameCluster(result, new_data, start, cluster)) continue;
    std::printf("cluster at 0x%zx is neither old nor new data\n", start);
    return 1;
  }
  return 0;
}
