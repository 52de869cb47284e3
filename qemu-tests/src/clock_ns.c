/* clock-ns TAG: prints "TAG NANOSECONDS" (CLOCK_REALTIME, the one clock
 * every namespace of a guest shares) and exits. The first and only thing
 * a benchmark's container does, so the time it prints is as close to the
 * container's first instruction as a program gets; also what the driver
 * runs just before it asks a runtime to start one. Built static with the
 * host's cc. */
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("%s %lld\n", argc > 1 ? argv[1] : "t", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    return 0;
}
