// strata: QEMU's QDict member order (see qdict_order.h).
#include "block/qdict_order.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "block/utf8.h"

namespace strata {

uint32_t QdictBucket(absl::string_view key) {
  uint32_t v = 0x238F13AFu * static_cast<uint32_t>(key.size());
  for (size_t i = 0; i < key.size(); ++i) {
    v += static_cast<uint32_t>(static_cast<uint8_t>(key[i])) << ((i * 5) % 24);
  }
  return (1103515243u * v + 12345u) % 512;
}

std::vector<size_t> QdictPrintOrder(const std::vector<std::string>& keys) {
  std::vector<size_t> order(keys.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const uint32_t ba = QdictBucket(keys[a]), bb = QdictBucket(keys[b]);
    if (ba != bb) return ba < bb;
    return a > b;  // newest first within a bucket
  });
  return order;
}

namespace {

// How many bytes QEMU's printer takes as one invalid sequence at s[i]: the lead byte and
// the continuation bytes after it, at most as many as the lead announces (up to six).
size_t InvalidSequenceLength(absl::string_view s, size_t i) {
  const unsigned char lead = s[i];
  const size_t want = (lead & 0xe0) == 0xc0   ? 2
                      : (lead & 0xf0) == 0xe0 ? 3
                      : (lead & 0xf8) == 0xf0 ? 4
                      : (lead & 0xfc) == 0xf8 ? 5
                      : (lead & 0xfe) == 0xfc ? 6
                                              : 1;
  size_t len = 1;
  while (len < want && i + len < s.size() &&
         (static_cast<unsigned char>(s[i + len]) & 0xc0) == 0x80) {
    ++len;
  }
  return len;
}

void AppendUnicodeEscape(uint32_t unit, std::string* out) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "\\u%04X", unit);
  out->append(buf);
}

}  // namespace

std::string QemuJsonString(absl::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    uint32_t code_point;
    size_t len = DecodeUtf8(s, i, Utf8Rules::kQemu, &code_point);
    const int32_t cp = len == 0 ? -1 : static_cast<int32_t>(code_point);
    i += len == 0 ? InvalidSequenceLength(s, i) : len;
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      default: break;
    }
    if (cp < 0) {
      AppendUnicodeEscape(0xfffd, &out);
    } else if (cp >= 0x20 && cp < 0x7f) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x10000) {
      AppendUnicodeEscape(static_cast<uint32_t>(cp), &out);
    } else {
      const uint32_t v = static_cast<uint32_t>(cp) - 0x10000;
      AppendUnicodeEscape(0xd800 + (v >> 10), &out);
      AppendUnicodeEscape(0xdc00 + (v & 0x3ff), &out);
    }
  }
  return out + "\"";
}

std::string QdictOneLine(const std::vector<std::pair<std::string, std::string>>& members) {
  std::vector<std::string> keys;
  for (const auto& m : members) keys.push_back(m.first);
  std::string out = "{";
  bool first = true;
  for (size_t i : QdictPrintOrder(keys)) {
    absl::StrAppend(&out, first ? "" : ", ", "\"", members[i].first, "\": ", members[i].second);
    first = false;
  }
  return out + "}";
}

}  // namespace strata
