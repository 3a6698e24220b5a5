/* rawframe IFACE HEX...: writes each Ethernet frame, given in hex (from the
 * destination MAC on), to IFACE through an AF_PACKET socket. The raw-frame
 * sender of the lab's attack tests (tests/nd.rs): it needs only CAP_NET_RAW,
 * which Docker grants by default. Built statically by the test, so that it
 * runs in the busybox image. */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: rawframe IFACE HEX...\n");
    return 2;
  }
  int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (s < 0) {
    perror("socket");
    return 1;
  }
  struct sockaddr_ll to;
  memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET;
  to.sll_ifindex = (int)if_nametoindex(argv[1]);
  to.sll_halen = 6;
  if (to.sll_ifindex == 0) {
    perror("if_nametoindex");
    return 1;
  }
  for (int f = 2; f < argc; f++) {
    size_t n = strlen(argv[f]) / 2;
    unsigned char *frame = malloc(n);
    for (size_t i = 0; i < n; i++) {
      unsigned v;
      if (sscanf(argv[f] + 2 * i, "%2x", &v) != 1) {
        fprintf(stderr, "bad hex in frame %d\n", f - 1);
        return 2;
      }
      frame[i] = (unsigned char)v;
    }
    memcpy(to.sll_addr, frame, 6);
    if (sendto(s, frame, n, 0, (struct sockaddr *)&to, sizeof to) != (ssize_t)n) {
      perror("sendto");
      return 1;
    }
    free(frame);
  }
  return 0;
}
