// strata: bytes through protobuf strings (see proto_bytes.h).
#include "block/proto_bytes.h"

#include <cstdint>
#include <vector>

#include "block/utf8.h"
#include "google/protobuf/descriptor.h"

namespace strata {
namespace {

constexpr uint32_t kEscapeBase = 0x10fe00;  // U+10FE00 + byte stands for the byte

bool IsEscapeCodePoint(uint32_t cp) { return cp >= kEscapeBase && cp <= kEscapeBase + 0xff; }

void AppendEscapedByte(unsigned char byte, std::string* out) {
  AppendUtf8(kEscapeBase + byte, out);  // a four-byte sequence
}

bool NeedsEscape(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const size_t len = DecodeUtf8(s, i, Utf8Rules::kStrict, &cp);
    if (len == 0 || IsEscapeCodePoint(cp)) return true;
    i += len;
  }
  return false;
}

bool HasEscapes(absl::string_view s) {
  // Every escape begins with F4 8F (U+10FE00..U+10FEFF are F4 8F B8 80..F4 8F BB BF).
  return s.find("\xf4\x8f") != absl::string_view::npos;
}

void UnescapeField(google::protobuf::Message* m, const google::protobuf::FieldDescriptor* f) {
  const google::protobuf::Reflection* r = m->GetReflection();
  if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*m, f); ++i) {
        const std::string s = r->GetRepeatedString(*m, f, i);
        if (HasEscapes(s)) r->SetRepeatedString(m, f, i, UnescapeBytesFromProto(s));
      }
    } else {
      const std::string s = r->GetString(*m, f);
      if (HasEscapes(s)) r->SetString(m, f, UnescapeBytesFromProto(s));
    }
  } else if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*m, f); ++i) {
        UnescapeMessageStrings(r->MutableRepeatedMessage(m, f, i));
      }
    } else {
      UnescapeMessageStrings(r->MutableMessage(m, f));
    }
  }
}

void EscapeValue(google::protobuf::Value* value) {
  switch (value->kind_case()) {
    case google::protobuf::Value::kStringValue:
      if (NeedsEscape(value->string_value())) {
        value->set_string_value(EscapeBytesForProto(value->string_value()));
      }
      break;
    case google::protobuf::Value::kStructValue:
      EscapeStructStrings(value->mutable_struct_value());
      break;
    case google::protobuf::Value::kListValue:
      for (google::protobuf::Value& item : *value->mutable_list_value()->mutable_values()) {
        EscapeValue(&item);
      }
      break;
    default:
      break;
  }
}

}  // namespace

std::string EscapeBytesForProto(absl::string_view s) {
  if (!NeedsEscape(s)) return std::string(s);
  std::string out;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const size_t len = DecodeUtf8(s, i, Utf8Rules::kStrict, &cp);
    if (len != 0 && !IsEscapeCodePoint(cp)) {
      out.append(s.data() + i, len);
      i += len;
      continue;
    }
    // An invalid byte, or each byte of a literal escape code point.
    const size_t n = len == 0 ? 1 : len;
    for (size_t k = 0; k < n; ++k) AppendEscapedByte(static_cast<unsigned char>(s[i + k]), &out);
    i += n;
  }
  return out;
}

std::string UnescapeBytesFromProto(absl::string_view s) {
  if (!HasEscapes(s)) return std::string(s);
  std::string out;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const size_t len = DecodeUtf8(s, i, Utf8Rules::kStrict, &cp);
    if (len == 4 && IsEscapeCodePoint(cp)) {
      out.push_back(static_cast<char>(cp - kEscapeBase));
    } else {
      out.append(s.data() + i, len == 0 ? 1 : len);
    }
    i += len == 0 ? 1 : len;
  }
  return out;
}

void EscapeStructStrings(google::protobuf::Struct* tree) {
  for (auto& [key, value] : *tree->mutable_fields()) EscapeValue(&value);
}

void UnescapeMessageStrings(google::protobuf::Message* message) {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  message->GetReflection()->ListFields(*message, &fields);
  for (const google::protobuf::FieldDescriptor* f : fields) UnescapeField(message, f);
}

}  // namespace strata
