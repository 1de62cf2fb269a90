// strata: option strings that are not UTF-8 (file names are bytes) carried through
// protobuf.
//
// Options travel as a google.protobuf.Struct, then through protobuf's JSON conversion
// into proto::BlockdevOptions. Protobuf strings must be UTF-8: a file name such as
// "image-\xff.qcow2", or QEMU's two-byte NUL (C0 80) from a json: option, would be
// mangled on the way. Before the conversion every string that is not strict UTF-8 is
// escaped reversibly: each byte of an invalid sequence becomes the code point
// U+10FE00 + byte (Supplementary Private Use Area B), and so does each byte of a literal
// U+10FE00..U+10FEFF, so that unescaping gives back exactly the bytes given. After it,
// every string field of the message is unescaped. Valid strings without such code points
// (nearly all) pass unchanged.
#ifndef STRATA_BLOCK_PROTO_BYTES_H_
#define STRATA_BLOCK_PROTO_BYTES_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"

namespace strata {

// `s` as strict UTF-8 (the escape above), or `s` itself when it needs none.
std::string EscapeBytesForProto(absl::string_view s);
// The inverse of EscapeBytesForProto.
std::string UnescapeBytesFromProto(absl::string_view s);

// Escapes every string value in `tree` (keys are left alone: a key that is not UTF-8 is
// no option anyone knows, and is refused as such).
void EscapeStructStrings(google::protobuf::Struct* tree);
// Unescapes every string field of `message`, its nested messages included.
void UnescapeMessageStrings(google::protobuf::Message* message);

}  // namespace strata

#endif  // STRATA_BLOCK_PROTO_BYTES_H_
