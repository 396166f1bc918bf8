/* dsd_send SOCKET_PATH DATAGRAM [LINGER_MS]: sends one datagram to a unix datagram socket, stays
 * alive LINGER_MS (default 1000; origin detection reads the sender's /proc/<pid>/cgroup after the
 * datagram arrives, as for any long-running client), then exits.
 * Built static so a test can run it inside a container (busybox has no unix-datagram client):
 * the agent then sees the container's process as the sender (SO_PASSCRED), which is what origin
 * detection must resolve. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: dsd_send SOCKET_PATH DATAGRAM [LINGER_MS]\n");
    return 2;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (strlen(argv[1]) >= sizeof(addr.sun_path)) {
    fprintf(stderr, "dsd_send: socket path too long\n");
    return 2;
  }
  strcpy(addr.sun_path, argv[1]);
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("dsd_send: socket");
    return 1;
  }
  size_t len = strlen(argv[2]);
  if (sendto(fd, argv[2], len, 0, (struct sockaddr*)&addr, sizeof(addr)) != (ssize_t)len) {
    perror("dsd_send: sendto");
    return 1;
  }
  close(fd);
  long linger_ms = argc == 4 ? atol(argv[3]) : 1000;
  if (linger_ms > 0 && linger_ms <= 60000) usleep((useconds_t)linger_ms * 1000);
  return 0;
}
