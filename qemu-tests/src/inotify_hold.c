/* inotify-hold MAX [wait]: opens up to MAX inotify instances (until one
 * fails), prints how many it got, and with "wait" keeps them until killed.
 * Exits 0 when it got at least one. A test tool of berth's QEMU tests
 * (busybox has no inotify applet); built static with the host's cc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int max = argc > 1 ? atoi(argv[1]) : 1;
    int n = 0;
    while (n < max) {
        if (inotify_init1(IN_CLOEXEC) < 0) {
            perror("inotify_init1");
            break;
        }
        n++;
    }
    printf("%d\n", n);
    fflush(stdout);
    if (argc > 2 && strcmp(argv[2], "wait") == 0) {
        for (;;) pause();
    }
    return n > 0 ? 0 : 1;
}
