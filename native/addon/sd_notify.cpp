// sdNotify(socket, message): one sd_notify datagram to systemd's NOTIFY_SOCKET, sent from the
// daemon's own process. systemd credits a notification to the unit by the sender's PID; a child
// `systemd-notify` may exit before systemd reads its message, which is then dropped (and needs
// NotifyAccess=all). Node has no unix datagram sockets, so this is the addon's. A socket name
// starting with '@' is in the abstract namespace, as sd_notify(3) says.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "handles.h"

namespace addon {

Napi::Value sd_notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString())
    throw Napi::TypeError::New(env, "sdNotify(socket, message): both must be strings");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const std::string message = info[1].As<Napi::String>().Utf8Value();

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() < 2 || (path[0] != '/' && path[0] != '@') || path.size() >= sizeof(addr.sun_path))
    throw Napi::Error::New(env, "sdNotify: NOTIFY_SOCKET must be an absolute path or an @abstract name that fits a unix socket address");
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());

  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Napi::Error::New(env, std::string("sdNotify: socket: ") + std::strerror(errno));
  const ssize_t sent = sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = errno;
  close(fd);
  if (sent < 0) throw Napi::Error::New(env, "sdNotify: sendto " + path + ": " + std::strerror(err));
  return env.Undefined();
}

}  // namespace addon
