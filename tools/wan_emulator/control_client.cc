// One control command over the emulator's Unix socket, with a deadline on the whole exchange.
#include "tools/wan_emulator/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace regionpulse::wan {
namespace {

// Closes the descriptor on every return path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<ControlReply> SendControlCommand(const std::string& socket_path, const std::string& line,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(address.sun_path)) return Error{"socket path too long: " + socket_path};
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Fd socket_fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (socket_fd.fd < 0) return Error{"socket", errno};
  // A Unix socket connects at once or fails at once: no deadline needed here.
  if (::connect(socket_fd.fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return Error{"connect to " + socket_path, errno};
  }
  const std::string request = line + "\n";
  size_t written = 0;
  while (written < request.size()) {
    const ssize_t n = ::send(socket_fd.fd, request.data() + written, request.size() - written, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{"send to " + socket_path, errno};
    }
    written += static_cast<size_t>(n);
  }

  std::string received;
  ControlReply reply;
  size_t line_start = 0;
  while (true) {
    // Look for the closing line among the complete lines received so far.
    size_t newline;
    while ((newline = received.find('\n', line_start)) != std::string::npos) {
      const std::string reply_line = received.substr(line_start, newline - line_start);
      const ReplyEnd end = ClassifyReplyLine(reply_line);
      if (end == ReplyEnd::kNotEnd) {
        line_start = newline + 1;
        continue;
      }
      reply.body = received.substr(0, line_start);
      reply.ok = end == ReplyEnd::kOk;
      if (!reply.ok) reply.error = reply_line.substr(std::strlen("error: "));
      return reply;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Error{"no reply from " + socket_path + " within " + std::to_string(timeout.count()) + " ms"};
    pollfd p{socket_fd.fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) return Error{"poll " + socket_path, errno};
    if (ready <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::recv(socket_fd.fd, chunk, sizeof(chunk), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{"read from " + socket_path, errno};
    }
    if (n == 0) return Error{"connection to " + socket_path + " closed before the reply ended"};
    received.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace regionpulse::wan
