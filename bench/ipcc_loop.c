/*
 * A compiled libqb IPC client for the "pve2" service: one request in a tight loop.
 *
 *   ipcc_loop SERVICE OP SECONDS [PAYLOAD]
 *
 * OP is the request id (2 GET_FS_VERSION, 3 GET_CLUSTER_INFO, 6 GET_CONFIG, ...); PAYLOAD, if
 * given, is sent as a NUL-terminated string (GET_CONFIG's path). Prints "<calls> <seconds>
 * <bytes of the last answer>" and exits 0, or a message and 1 if a call fails. The Python
 * client tops out near the daemon's own rate, so bench/ipc_compiled.py uses this one.
 */
#include <qb/qbipcc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#define MAX_MSG_SIZE (1024 * 1024) /* what PVE::IPCC asks for */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s SERVICE OP SECONDS [PAYLOAD]\n", argv[0]);
        return 2;
    }
    const char *service = argv[1];
    int op = atoi(argv[2]);
    double seconds = atof(argv[3]);
    const char *payload = argc > 4 ? argv[4] : NULL;

    qb_ipcc_connection_t *conn = qb_ipcc_connect(service, MAX_MSG_SIZE);
    if (conn == NULL) {
        perror("qb_ipcc_connect");
        return 1;
    }
    struct qb_ipc_request_header header;
    memset(&header, 0, sizeof(header));
    header.id = op;
    struct iovec iov[2];
    iov[0].iov_base = &header;
    iov[0].iov_len = sizeof(header);
    int iovcnt = 1;
    if (payload != NULL) {
        iov[1].iov_base = (void *)payload;
        iov[1].iov_len = strlen(payload) + 1;
        iovcnt = 2;
    }
    header.size = sizeof(header) + (payload != NULL ? strlen(payload) + 1 : 0);

    char *answer = malloc(MAX_MSG_SIZE);
    if (answer == NULL) {
        return 1;
    }
    long calls = 0;
    ssize_t last = 0;
    double start = now(), elapsed = 0;
    while (elapsed < seconds) {
        for (int i = 0; i < 100; i++) {
            last = qb_ipcc_sendv_recv(conn, iov, iovcnt, answer, MAX_MSG_SIZE, 30000);
            struct qb_ipc_response_header *res = (struct qb_ipc_response_header *)answer;
            if (last < (ssize_t)sizeof(*res) || res->error != 0) {
                fprintf(stderr, "call %ld failed: %zd, error %d\n", calls, last,
                        last >= (ssize_t)sizeof(*res) ? res->error : 0);
                qb_ipcc_disconnect(conn);
                return 1;
            }
            calls++;
        }
        elapsed = now() - start;
    }
    printf("%ld %.6f %zd\n", calls, elapsed, last);
    qb_ipcc_disconnect(conn);
    free(answer);
    return 0;
}
