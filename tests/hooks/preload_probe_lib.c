/* A plain C library that knows nothing of fern: it sleeps with libc's
   usleep and reads with libc's read. Loaded by preload_probe. */
#include <unistd.h>

int probe_sleep(unsigned us) { return usleep(us); }

long probe_read(int fd, void* buf, unsigned long n) { return (long)read(fd, buf, n); }
