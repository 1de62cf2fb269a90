// strata: QEMU's JSON dialect (see qemu_json.h).
//
// Three stages, as the errors show them: a lexer that stops at the first byte no token
// can take ("stray"); a streamer that gathers tokens until the brackets balance (the
// first value is then parsed, and anything after it is an error); and a recursive-descent
// parser over the gathered tokens, which decodes strings last.
#include "block/qemu_json.h"

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "block/utf8.h"
#include "strata/errors.h"

namespace strata {
namespace {

using google::protobuf::Value;

constexpr int kMaxNesting = 1024;

absl::Status ParseError(absl::string_view detail) {
  return ErrnoError(EINVAL, absl::StrCat("JSON parse error, ", detail));
}

enum class TokenKind {
  kLeftBrace, kRightBrace, kLeftBracket, kRightBracket, kColon, kComma,
  kString, kNumber, kKeyword,
};

struct Token {
  TokenKind kind;
  absl::string_view text;  // the token's bytes in the input (strings with their quotes)
};

// Splits the input into tokens. Next() skips whitespace and returns nullopt at the end
// of the input; a byte that cannot continue (or start) a token is an error that names
// the token's bytes so far, that byte included.
class Lexer {
 public:
  explicit Lexer(absl::string_view text) : text_(text) {}

  absl::StatusOr<std::optional<Token>> Next() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
    if (pos_ == text_.size()) return std::nullopt;
    start_ = pos_;
    const char c = text_[pos_];
    switch (c) {
      case '{': return Single(TokenKind::kLeftBrace);
      case '}': return Single(TokenKind::kRightBrace);
      case '[': return Single(TokenKind::kLeftBracket);
      case ']': return Single(TokenKind::kRightBracket);
      case ':': return Single(TokenKind::kColon);
      case ',': return Single(TokenKind::kComma);
      case '"':
      case '\'':
        return String(c);
      default: break;
    }
    if (c == '-' || absl::ascii_isdigit(c)) return Number();
    if (c >= 'a' && c <= 'z') {
      while (pos_ < text_.size() && text_[pos_] >= 'a' && text_[pos_] <= 'z') ++pos_;
      return Make(TokenKind::kKeyword);
    }
    return Stray();
  }

 private:
  static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  static bool InString(unsigned char c) { return c >= 0x20 && c <= 0xfd; }

  Token Make(TokenKind kind) const { return Token{kind, text_.substr(start_, pos_ - start_)}; }
  absl::StatusOr<std::optional<Token>> Single(TokenKind kind) {
    ++pos_;
    return Make(kind);
  }
  // The token so far and the byte at pos_ (if any) are not a token.
  absl::Status Stray() const {
    const size_t end = std::min(pos_ + 1, text_.size());
    return ParseError(absl::StrCat("stray '", text_.substr(start_, end - start_), "'"));
  }
  bool Digit() const { return pos_ < text_.size() && absl::ascii_isdigit(text_[pos_]); }
  void Digits() {
    while (Digit()) ++pos_;
  }

  absl::StatusOr<std::optional<Token>> String(char quote) {
    ++pos_;
    while (pos_ < text_.size()) {
      const unsigned char c = text_[pos_];
      if (c == static_cast<unsigned char>(quote)) {
        ++pos_;
        return Make(TokenKind::kString);
      }
      if (!InString(c)) return Stray();
      ++pos_;
      if (c == '\\') {
        if (pos_ == text_.size()) break;
        if (!InString(text_[pos_])) return Stray();
        ++pos_;
      }
    }
    return Stray();  // unterminated: the token up to the end
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  absl::StatusOr<std::optional<Token>> Number() {
    if (text_[pos_] == '-') ++pos_;
    if (!Digit()) return Stray();
    if (text_[pos_++] == '0') {
      if (Digit()) return Stray();
    } else {
      Digits();
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (!Digit()) return Stray();
      Digits();
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (!Digit()) return Stray();
      Digits();
    }
    return Make(TokenKind::kNumber);
  }

  absl::string_view text_;
  size_t pos_ = 0;
  size_t start_ = 0;
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Decodes a string token (quotes included).
absl::StatusOr<std::string> DecodeString(absl::string_view token) {
  std::string out;
  const absl::string_view body = token.substr(1, token.size() - 2);
  // A bad \u escape is named by up to six bytes from its backslash, the closing quote
  // included when the escape is cut short.
  auto bad_unicode = [&](size_t at, size_t len = 6) {
    return ParseError(
        absl::StrCat(token.substr(1 + at, len), " is not a valid Unicode character"));
  };
  auto hex4 = [&](size_t at) -> int32_t {  // the four hex digits after "\u" at `at`
    if (at + 6 > body.size() || body[at + 1] != 'u') return -1;
    int32_t v = 0;
    for (size_t k = at + 2; k < at + 6; ++k) {
      const int h = HexValue(body[k]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    return v;
  };
  for (size_t i = 0; i < body.size();) {
    const char c = body[i];
    if (c != '\\') {
      uint32_t cp;
      const size_t len = DecodeUtf8(body, i, Utf8Rules::kQemu, &cp);
      if (len == 0) return ParseError("invalid UTF-8 sequence in string");
      if (cp == 0) {
        out.append("\xc0\x80");  // QEMU's NUL, see qemu_json.h
      } else {
        out.append(body.data() + i, len);
      }
      i += len;
      continue;
    }
    const char e = body[i + 1];  // the lexer guarantees a byte after a backslash
    switch (e) {
      case '"': case '\'': case '\\': case '/': out.push_back(e); i += 2; continue;
      case 'b': out.push_back('\b'); i += 2; continue;
      case 'f': out.push_back('\f'); i += 2; continue;
      case 'n': out.push_back('\n'); i += 2; continue;
      case 'r': out.push_back('\r'); i += 2; continue;
      case 't': out.push_back('\t'); i += 2; continue;
      case 'u': break;
      default: return ParseError("invalid escape sequence in string");
    }
    int32_t cp = hex4(i);
    if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff)) return bad_unicode(i);
    if (cp >= 0xd800 && cp <= 0xdbff) {
      const int32_t low = hex4(i + 6);
      if (i + 6 >= body.size() || body[i + 6] != '\\' || low < 0xdc00 || low > 0xdfff) {
        return bad_unicode(i);
      }
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
      if (IsNoncharacter(cp)) return bad_unicode(i, 12);  // the pair is named
      i += 6;
    }
    if (IsNoncharacter(cp)) return bad_unicode(i);
    if (cp == 0) {
      out.append("\xc0\x80");
    } else {
      AppendUtf8(static_cast<uint32_t>(cp), &out);
    }
    i += 6;
  }
  return out;
}

// Recursive descent over the tokens of one balanced value.
class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : tokens_(tokens) {}

  absl::StatusOr<Value> ParseValue() {
    if (at_ == tokens_.size()) return ParseError("premature EOI");
    const Token& t = tokens_[at_];
    Value v;
    switch (t.kind) {
      case TokenKind::kLeftBrace: return ParseObject();
      case TokenKind::kLeftBracket: return ParseArray();
      case TokenKind::kString: {
        ++at_;
        absl::StatusOr<std::string> s = DecodeString(t.text);
        if (!s.ok()) return s.status();
        v.set_string_value(*std::move(s));
        return v;
      }
      case TokenKind::kNumber:
        ++at_;
        v.set_number_value(std::strtod(std::string(t.text).c_str(), nullptr));
        return v;
      case TokenKind::kKeyword:
        ++at_;
        if (t.text == "true" || t.text == "false") {
          v.set_bool_value(t.text == "true");
        } else if (t.text == "null") {
          v.set_null_value(google::protobuf::NULL_VALUE);
        } else {
          return ParseError(absl::StrCat("invalid keyword '", t.text, "'"));
        }
        return v;
      default:
        return ParseError("expecting value");
    }
  }

  bool AtEnd() const { return at_ == tokens_.size(); }

 private:
  bool Next(TokenKind kind) const { return at_ < tokens_.size() && tokens_[at_].kind == kind; }

  absl::StatusOr<Value> ParseObject() {
    ++at_;
    Value v;
    auto& fields = *v.mutable_struct_value()->mutable_fields();
    if (Next(TokenKind::kRightBrace)) {
      ++at_;
      return v;
    }
    while (true) {
      absl::StatusOr<Value> key = ParseValue();
      if (!key.ok()) return key.status();
      if (key->kind_case() != Value::kStringValue) {
        return ParseError("key is not a string in object");
      }
      if (AtEnd()) return ParseError("premature EOI");
      if (!Next(TokenKind::kColon)) return ParseError("missing : in object pair");
      ++at_;
      absl::StatusOr<Value> value = ParseValue();
      if (!value.ok()) return value.status();
      if (!fields.emplace(key->string_value(), *std::move(value)).second) {
        return ParseError("duplicate key");
      }
      if (AtEnd()) return ParseError("premature EOI");
      if (Next(TokenKind::kRightBrace)) {
        ++at_;
        return v;
      }
      if (!Next(TokenKind::kComma)) return ParseError("expected separator in dict");
      ++at_;
    }
  }

  absl::StatusOr<Value> ParseArray() {
    ++at_;
    Value v;
    auto* list = v.mutable_list_value();
    if (Next(TokenKind::kRightBracket)) {
      ++at_;
      return v;
    }
    while (true) {
      absl::StatusOr<Value> item = ParseValue();
      if (!item.ok()) return item.status();
      *list->add_values() = *std::move(item);
      if (AtEnd()) return ParseError("premature EOI");
      if (Next(TokenKind::kRightBracket)) {
        ++at_;
        return v;
      }
      if (!Next(TokenKind::kComma)) return ParseError("expected separator in list");
      ++at_;
    }
  }

  const std::vector<Token>& tokens_;
  size_t at_ = 0;
};

}  // namespace

absl::StatusOr<Value> ParseQemuJson(absl::string_view text) {
  const absl::Status more_than_one = ErrnoError(EINVAL, "Expecting at most one JSON value");
  Lexer lexer(text);
  std::vector<Token> tokens;
  std::optional<Value> result;
  int depth = 0;
  while (true) {
    absl::StatusOr<std::optional<Token>> token = lexer.Next();
    if (!token.ok()) return result ? more_than_one : token.status();
    if (!token->has_value()) break;
    if (result) return more_than_one;
    const Token& t = **token;
    tokens.push_back(t);
    if (t.kind == TokenKind::kLeftBrace || t.kind == TokenKind::kLeftBracket) {
      if (++depth > kMaxNesting) return ErrnoError(EINVAL, "JSON nesting depth limit exceeded");
    } else if (t.kind == TokenKind::kRightBrace || t.kind == TokenKind::kRightBracket) {
      --depth;
    }
    if (depth > 0) continue;
    // The brackets balance (or close more than they opened): the value is complete.
    Parser parser(tokens);
    absl::StatusOr<Value> value = parser.ParseValue();
    if (!value.ok()) return value.status();
    if (!parser.AtEnd()) return more_than_one;
    result = *std::move(value);
  }
  if (result) return *std::move(result);
  if (tokens.empty()) return ErrnoError(EINVAL, "Expecting a JSON value");
  // The input ended inside a value: the parser says where.
  Parser parser(tokens);
  absl::StatusOr<Value> value = parser.ParseValue();
  if (!value.ok()) return value.status();
  return ParseError("premature EOI");
}

}  // namespace strata
