/* What behave.c shares with behave_primitives.c (the second file of the testbox's helper). */
#ifndef BEHAVE_H
#define BEHAVE_H
#include <sys/socket.h>
#include <sys/types.h>

extern volatile long target;

void usage(void);
long report(const char *what, long result);
pid_t idle_child(void);
void end_child(pid_t child);
int loopback(const char *host, struct sockaddr_storage *out, socklen_t *length, int port);
/* Runs ACTION if it is one of behave_primitives.c's: 1 when it was, 0 otherwise. */
int behave_primitive(const char *action, int extra, char **argv);

#endif
