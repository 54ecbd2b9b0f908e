#include "tokenizer/spm_proto.h"

#include <cstdint>

#include "pairrm/pairrm.h"

namespace pairrm {
namespace {

// ModelProto / SentencePiece / TrainerSpec / NormalizerSpec field numbers (sentencepiece_model.proto).
constexpr uint32_t kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3, kModelSelfTestData = 4;
constexpr uint32_t kPieceType = 3;
constexpr uint64_t kTypeNormal = 1, kTypeByte = 6;
constexpr uint32_t kTrainerByteFallback = 35;
constexpr uint32_t kNormalizerName = 1, kNormalizerCharsmap = 2, kNormalizerAddDummyPrefix = 3,
                   kNormalizerRemoveExtraWhitespaces = 4, kNormalizerEscapeWhitespaces = 5;

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  uint32_t wire = 0;
  uint64_t varint = 0;         // kVarint
  std::string_view bytes;      // kLengthDelimited payload
  std::string_view raw;        // the whole field, tag included
};

class WireReader {
 public:
  WireReader(std::string_view data, const std::string& path) : d_(data), path_(path) {}
  bool done() const { return pos_ >= d_.size(); }

  Field next() {
    Field f;
    const size_t start = pos_;
    const uint64_t tag = varint();
    f.number = static_cast<uint32_t>(tag >> 3);
    f.wire = static_cast<uint32_t>(tag & 7);
    switch (f.wire) {
      case kVarint: f.varint = varint(); break;
      case kFixed64: skip(8); break;
      case kFixed32: skip(4); break;
      case kLengthDelimited: {
        const uint64_t n = varint();
        if (n > d_.size() - pos_) fail();
        f.bytes = d_.substr(pos_, n);
        pos_ += n;
        break;
      }
      default: fail();
    }
    f.raw = d_.substr(start, pos_ - start);
    return f;
  }

 private:
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= d_.size()) fail();
      const auto b = static_cast<uint8_t>(d_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail();
  }
  void skip(size_t n) {
    if (n > d_.size() - pos_) fail();
    pos_ += n;
  }
  [[noreturn]] void fail() const { throw Error(path_ + ": not a valid SentencePiece model (bad protobuf)"); }

  std::string_view d_;
  size_t pos_ = 0;
  const std::string& path_;
};

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void put_tag(std::string& out, uint32_t number, uint32_t wire) { put_varint(out, (uint64_t{number} << 3) | wire); }
void put_bytes(std::string& out, uint32_t number, std::string_view bytes) {
  put_tag(out, number, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}
void put_bool(std::string& out, uint32_t number, bool v) {
  put_tag(out, number, kVarint);
  put_varint(out, v ? 1 : 0);
}

}  // namespace

SpmModelParts read_spm_model(std::string_view proto, const std::string& path) {
  SpmModelParts parts;
  WireReader r(proto, path);
  while (!r.done()) {
    const Field f = r.next();
    if (f.number == kModelPieces && f.wire == kLengthDelimited) ++parts.piece_count;
    if (f.number == kModelNormalizerSpec && f.wire == kLengthDelimited) {
      WireReader n(f.bytes, path);
      while (!n.done()) {
        const Field g = n.next();
        if (g.number == kNormalizerCharsmap && g.wire == kLengthDelimited) parts.precompiled_charsmap = std::string(g.bytes);
      }
    }
  }
  if (parts.piece_count == 0) throw Error(path + ": SentencePiece model has no pieces");
  return parts;
}

std::string make_fast_equivalent_model(std::string_view proto, const std::string& path) {
  std::string out;
  out.reserve(proto.size());
  WireReader r(proto, path);
  while (!r.done()) {
    const Field f = r.next();
    if (f.number == kModelPieces && f.wire == kLengthDelimited) {
      std::string piece;
      WireReader p(f.bytes, path);
      while (!p.done()) {
        const Field g = p.next();
        if (g.number == kPieceType && g.wire == kVarint && g.varint == kTypeByte) {
          put_tag(piece, kPieceType, kVarint);
          put_varint(piece, kTypeNormal);
        } else {
          piece.append(g.raw);
        }
      }
      put_bytes(out, kModelPieces, piece);
    } else if (f.number == kModelTrainerSpec && f.wire == kLengthDelimited) {
      std::string spec;
      WireReader t(f.bytes, path);
      while (!t.done()) {
        const Field g = t.next();
        if (g.number != kTrainerByteFallback) spec.append(g.raw);
      }
      put_bool(spec, kTrainerByteFallback, false);
      put_bytes(out, kModelTrainerSpec, spec);
    } else if (f.number == kModelNormalizerSpec) {
      std::string spec;
      put_bytes(spec, kNormalizerName, "identity");
      put_bool(spec, kNormalizerAddDummyPrefix, false);
      put_bool(spec, kNormalizerRemoveExtraWhitespaces, false);
      put_bool(spec, kNormalizerEscapeWhitespaces, false);
      put_bytes(out, kModelNormalizerSpec, spec);
    } else if (f.number == kModelSelfTestData) {
      // Dropped: its samples were produced with the original normaliser and would fail the load-time check.
    } else {
      out.append(f.raw);
    }
  }
  return out;
}

}  // namespace pairrm
