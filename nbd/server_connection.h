// strata nbd: ServerConnection, one client of the server from handshake to disconnect.
//
// Runs on one event loop (its Run coroutine and every request coroutine it starts), so
// its state needs no lock; only Shutdown is called from other threads. The handshake is
// in server_handshake.cc, the transmission phase in server_transmission.cc.
//
// Protocol errors (a bad magic, a malformed option the protocol says to drop for, a write
// whose payload cannot be read) end the connection; request errors (out of range,
// read-only, I/O errors, unknown commands) get an error reply and the connection goes on.
#ifndef STRATA_NBD_SERVER_CONNECTION_H_
#define STRATA_NBD_SERVER_CONNECTION_H_

#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "aio/task.h"
#include "block/buffer_recycler.h"
#include "block/io_vector.h"
#include "nbd/export.h"
#include "nbd/server.h"
#include "nbd/stream.h"

namespace strata::nbd {

class ServerConnection {
 public:
  ServerConnection(Server* server, std::unique_ptr<Stream> stream);
  ~ServerConnection();

  // The whole connection: handshake, then requests until the client disconnects or the
  // server stops. Returns after every request it started has finished.
  aio::Task<absl::Status> Run();
  // Ends the connection from any thread (server stop): pending socket waits fail.
  void Shutdown();

 private:
  struct Request {
    uint16_t flags = 0;
    uint16_t type = 0;
    uint64_t handle = 0;
    uint64_t offset = 0;
    uint32_t length = 0;
  };
  // A reply waiting to be sent: protocol bytes (`meta`) and payload (`data`) interleaved
  // as `pieces` say. Build it whole, then Send: the pieces point into both buffers.
  struct Reply {
    std::vector<uint8_t> meta;
    AlignedBuffer data;
    struct Piece {
      bool from_data;
      size_t offset;
      size_t length;
    };
    std::vector<Piece> pieces;
    size_t meta_done = 0;  // meta bytes already in a piece

    // Makes the meta bytes written since the last cut the next piece.
    void CutMeta() {
      if (meta.size() > meta_done) {
        pieces.push_back({false, meta_done, meta.size() - meta_done});
        meta_done = meta.size();
      }
    }
    // Appends `length` bytes of `data` at `offset` as the next piece.
    void AddData(size_t offset, size_t length) {
      CutMeta();
      if (length > 0) pieces.push_back({true, offset, length});
    }
  };

  // --- handshake (server_handshake.cc) ---
  // Negotiates until the client picked an export (true) or left (false).
  aio::Task<absl::StatusOr<bool>> Negotiate();
  aio::Task<absl::Status> SendOptionReply(uint32_t option, uint32_t type,
                                          const std::vector<uint8_t>& data);
  aio::Task<absl::Status> SendOptionError(uint32_t option, uint32_t type,
                                          const std::string& message);
  aio::Task<absl::StatusOr<bool>> HandleInfo(uint32_t option, const std::vector<uint8_t>& data);
  aio::Task<absl::Status> HandleList(uint32_t option, const std::vector<uint8_t>& data);
  aio::Task<absl::Status> HandleMetaContext(uint32_t option, const std::vector<uint8_t>& data);
  aio::Task<absl::Status> SendExportNameReply(const Export& e);

  // --- transmission (server_transmission.cc) ---
  aio::Task<absl::Status> Serve();
  // Runs one request and queues its reply. `payload` holds a write's data.
  aio::Task<absl::Status> Handle(Request request, AlignedBuffer payload);
  aio::Task<absl::Status> HandleRead(const Request& request);
  // A structured read that sends holes as NBD_REPLY_TYPE_OFFSET_HOLE chunks instead of
  // reading them (as qemu-nbd does for reads without NBD_CMD_FLAG_DF). Returns nullopt
  // when the range has no hole (the caller reads it plainly).
  aio::Task<std::optional<absl::Status>> TrySparseRead(const Request& request);
  aio::Task<absl::Status> HandleBlockStatus(const Request& request);
  // Validates range and flags; 0 or the wire error.
  uint32_t Check(const Request& request) const;
  // Queues a reply and sends the queue unless another coroutine is sending already.
  aio::Task<absl::Status> Send(Reply reply);
  aio::Task<absl::Status> SendError(const Request& request, uint32_t error,
                                    const std::string& message);
  aio::Task<absl::Status> SendDone(const Request& request);
  // Parks the reader until `condition` holds (checked whenever a request ends).
  void RequestEnded(size_t payload_bytes);

  Server* const server_;
  std::unique_ptr<Stream> stream_;
  bool no_zeroes_ = false;
  bool structured_ = false;
  bool tls_ = false;
  const Export* export_ = nullptr;
  std::vector<uint32_t> contexts_;  // the selected metadata context ids
  const Export* meta_export_ = nullptr;  // the export contexts_ were chosen for

  int in_flight_ = 0;
  size_t in_flight_bytes_ = 0;
  std::coroutine_handle<> reader_parked_;
  std::deque<Reply> send_queue_;
  // Read reply buffers and write payloads, recycled (large fresh ones cost page faults).
  AlignedBufferRecycler buffers_{32u << 20};
  bool sending_ = false;
  bool broken_ = false;  // a send failed: the connection is over
  const int shutdown_fd_;  // the socket, for Shutdown from other threads
};

// Maps a block-layer error to the protocol's error numbers (as QEMU does).
uint32_t WireErrorOf(const absl::Status& status);

}  // namespace strata::nbd

#endif  // STRATA_NBD_SERVER_CONNECTION_H_
