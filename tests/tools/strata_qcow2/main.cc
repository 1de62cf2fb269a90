// strata-qcow2: inspect and edit a qcow2 header the way QEMU's iotests do with their
// helper (same commands, same output): dump-header, dump-header-exts, set-header,
// add-header-ext, add-header-ext-stdio, del-header-ext, set-feature-bit.
//
//   strata-qcow2 <file> <cmd> [<arg>, ...]
#include <cerrno>
#include <cinttypes>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/tools/strata_qcow2/raw_header.h"

namespace strata::qcow2tool {
namespace {

bool IsHexField(const std::string& name) {
  return name == "magic" || name == "backing_file_offset" || name == "backing_file_size" ||
         name == "l1_table_offset" || name == "refcount_table_offset" ||
         name == "snapshot_offset";
}

std::string BitList(uint64_t v) {
  std::string out = "[";
  for (int bit = 0; bit < 64; ++bit) {
    if (v & (1ull << bit)) out += (out.size() > 1 ? ", " : "") + std::to_string(bit);
  }
  return out + "]";
}

const char* ExtensionLabel(uint32_t magic) {
  switch (magic) {
    case 0xe2792aca: return "Backing format";
    case 0x6803f857: return "Feature table";
    case 0x0537be77: return "Crypto header";
    case 0x23852875: return "Bitmaps";
    case 0x44415441: return "Data file";
    default: return "<unknown>";
  }
}

void DumpExtensions(const RawHeader& h) {
  for (const RawExtension& e : h.extensions) {
    bool printable = true;
    for (uint8_t c : e.data) printable &= c >= 32 && c < 127;
    std::printf("Header extension:\n");
    std::printf("%-25s 0x%x (%s)\n", "magic", e.magic, ExtensionLabel(e.magic));
    std::printf("%-25s %zu\n", "length", e.data.size());
    if (printable) {
      std::printf("%-25s '%s'\n", "data", std::string(e.data.begin(), e.data.end()).c_str());
    } else {
      std::printf("%-25s <binary>\n", "data");
    }
    std::printf("\n");
  }
}

void DumpHeader(const RawHeader& h) {
  for (const auto& [name, value] : h.fields) {
    if (name.find("_features") != std::string::npos) {
      std::printf("%-25s %s\n", name.c_str(), BitList(value).c_str());
    } else if (IsHexField(name)) {
      std::printf("%-25s 0x%" PRIx64 "\n", name.c_str(), value);
    } else {
      std::printf("%-25s %" PRIu64 "\n", name.c_str(), value);
    }
  }
  std::printf("\n");
  DumpExtensions(h);
}

std::optional<uint64_t> ParseNumber(const std::string& s) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (s.empty() || *end != '\0' || errno != 0) return std::nullopt;
  return v;
}

void Usage(const char* prog) {
  std::printf("Usage: %s <file> <cmd> [<arg>, ...]\n\n"
              "Supported commands:\n"
              "    dump-header                    Dump image header and header extensions\n"
              "    dump-header-exts               Dump image header extensions\n"
              "    set-header <field> <value>     Set a field in the header\n"
              "    add-header-ext <magic> <data>  Add a header extension\n"
              "    add-header-ext-stdio <magic>   Add a header extension, data from stdin\n"
              "    del-header-ext <magic>         Delete a header extension\n"
              "    set-feature-bit <feature> <bit> Set a feature bit\n",
              prog);
}

int Run(int argc, char** argv) {
  if (argc < 3) {
    Usage(argv[0]);
    return 1;
  }
  std::string path = argv[1], cmd = argv[2];
  std::vector<std::string> args(argv + 3, argv + argc);
  absl::StatusOr<RawHeader> header = ReadRawHeader(path);
  if (!header.ok()) {
    std::fprintf(stderr, "%s\n", std::string(header.status().message()).c_str());
    return 1;
  }
  RawHeader& h = *header;
  auto need = [&](size_t n) {
    if (args.size() != n) {
      Usage(argv[0]);
      return false;
    }
    return true;
  };
  if (cmd == "dump-header") {
    if (!need(0)) return 1;
    DumpHeader(h);
    return 0;
  }
  if (cmd == "dump-header-exts") {
    if (!need(0)) return 1;
    DumpExtensions(h);
    return 0;
  }
  if (cmd == "set-header") {
    if (!need(2)) return 1;
    std::optional<uint64_t> v = ParseNumber(args[1]);
    if (!v) {
      std::printf("'%s' is not a valid number\n", args[1].c_str());
      return 1;
    }
    if (!h.Set(args[0], *v)) {
      std::printf("'%s' is not a known header field\n", args[0].c_str());
      return 1;
    }
  } else if (cmd == "add-header-ext" || cmd == "add-header-ext-stdio") {
    if (!need(cmd == "add-header-ext" ? 2 : 1)) return 1;
    std::optional<uint64_t> magic = ParseNumber(args[0]);
    if (!magic) {
      std::printf("'%s' is not a valid number\n", args[0].c_str());
      return 1;
    }
    std::string data = cmd == "add-header-ext"
                           ? args[1]
                           : std::string(std::istreambuf_iterator<char>(std::cin), {});
    h.extensions.push_back({static_cast<uint32_t>(*magic),
                            std::vector<uint8_t>(data.begin(), data.end())});
  } else if (cmd == "del-header-ext") {
    if (!need(1)) return 1;
    std::optional<uint64_t> magic = ParseNumber(args[0]);
    if (!magic) {
      std::printf("'%s' is not a valid number\n", args[0].c_str());
      return 1;
    }
    size_t before = h.extensions.size();
    std::erase_if(h.extensions, [&](const RawExtension& e) { return e.magic == *magic; });
    if (h.extensions.size() == before) {
      std::printf("No such header extension\n");
      return 0;
    }
  } else if (cmd == "set-feature-bit") {
    if (!need(2)) return 1;
    std::string field;
    if (args[0] == "incompatible") field = "incompatible_features";
    else if (args[0] == "compatible") field = "compatible_features";
    else if (args[0] == "autoclear") field = "autoclear_features";
    else {
      std::printf("'%s' is not a valid group, try 'incompatible', 'compatible', or "
                  "'autoclear'\n", args[0].c_str());
      return 1;
    }
    std::optional<uint64_t> bit = ParseNumber(args[1]);
    if (!bit || *bit >= 64) {
      std::printf("'%s' is not a valid bit number in range [0, 64)\n", args[1].c_str());
      return 1;
    }
    h.Set(field, h.Get(field) | (1ull << *bit));
  } else {
    std::printf("Unknown command '%s'\n", cmd.c_str());
    return 1;
  }
  absl::Status st = WriteRawHeader(path, h);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace strata::qcow2tool

int main(int argc, char** argv) { return strata::qcow2tool::Run(argc, argv); }
