/*
 * The floor of a replicated write: one CPG multicast until its own delivery, from C.
 *
 *   cpg_floor GROUP MEMBERS COUNT SIZE   join GROUP, wait until it has MEMBERS members, then
 *                                        COUNT times: multicast SIZE bytes and dispatch until
 *                                        that message comes back; prints each round trip in ns.
 *   cpg_floor GROUP MEMBERS COUNT SIZE GAP_US
 *                                        the same with a pause of GAP_US microseconds after
 *                                        each delivery (a writer that works between messages).
 *   cpg_floor GROUP MEMBERS COUNT SIZE stream
 *                                        the same COUNT messages sent back to back, as a sync
 *                                        leader sends its UPDATEs; prints the ns until the last
 *                                        one came back.
 *   cpg_floor GROUP                      join GROUP and dispatch until SIGTERM (a member that
 *                                        receives, as another node's pmxcfs does).
 *
 * Any daemon that replicates over CPG and answers a writer after delivery (the C pmxcfs does,
 * for each message of a change) pays at least this per message. bench/write_path.py runs it on
 * the same cluster, in the same run, as our daemon's figures.
 */
#include <corosync/cpg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned int my_nodeid;
static size_t members;
static unsigned long long delivered_seq = ~0ULL;
static volatile sig_atomic_t stop;

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid,
                       uint32_t pid, void *msg, size_t len)
{
	(void)handle;
	(void)group;
	if (nodeid == my_nodeid && pid == (uint32_t)getpid() && len >= sizeof(delivered_seq))
		memcpy(&delivered_seq, msg, sizeof(delivered_seq));
}

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group,
                       const struct cpg_address *member_list, size_t member_count,
                       const struct cpg_address *left, size_t left_count,
                       const struct cpg_address *joined, size_t joined_count)
{
	(void)handle;
	(void)group;
	(void)member_list;
	(void)left;
	(void)left_count;
	(void)joined;
	(void)joined_count;
	members = member_count;
}

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static int check(cs_error_t err, const char *what)
{
	if (err != CS_OK) {
		fprintf(stderr, "%s failed: %d\n", what, err);
		exit(1);
	}
	return 0;
}

int main(int argc, char **argv)
{
	cpg_callbacks_t callbacks = {.cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg};
	cpg_handle_t handle;
	struct cpg_name group;
	cs_error_t err;

	if (argc != 2 && argc != 5 && argc != 6) {
		fprintf(stderr, "usage: %s GROUP [MEMBERS COUNT SIZE [stream|GAP_US]]\n", argv[0]);
		return 2;
	}
	if (strlen(argv[1]) >= CPG_MAX_NAME_LENGTH)
		return 2;
	group.length = (uint32_t)strlen(argv[1]) + 1;
	memset(group.value, 0, sizeof(group.value));
	memcpy(group.value, argv[1], group.length - 1);

	check(cpg_initialize(&handle, &callbacks), "cpg_initialize");
	check(cpg_local_get(handle, &my_nodeid), "cpg_local_get");
	do {
		err = cpg_join(handle, &group);
		if (err == CS_ERR_TRY_AGAIN)
			usleep(10000);
	} while (err == CS_ERR_TRY_AGAIN);
	check(err, "cpg_join");

	if (argc == 2) {
		signal(SIGTERM, on_term);
		signal(SIGINT, on_term);
		printf("joined\n");
		fflush(stdout);
		int fd;
		check(cpg_fd_get(handle, &fd), "cpg_fd_get");
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		while (!stop)
			if (poll(&pfd, 1, 100) > 0)
				check(cpg_dispatch(handle, CS_DISPATCH_ALL), "cpg_dispatch");
		cpg_finalize(handle);
		return 0;
	}

	size_t want = (size_t)strtoul(argv[2], NULL, 10);
	unsigned long long count = strtoull(argv[3], NULL, 10);
	size_t size = (size_t)strtoul(argv[4], NULL, 10);
	if (size < sizeof(unsigned long long))
		size = sizeof(unsigned long long);
	char *buf = calloc(1, size);
	if (!buf)
		return 1;
	while (members < want)
		check(cpg_dispatch(handle, CS_DISPATCH_ONE), "cpg_dispatch (join)");

	int streaming = argc == 6 && strcmp(argv[5], "stream") == 0;
	useconds_t gap = argc == 6 && !streaming ? (useconds_t)strtoul(argv[5], NULL, 10) : 0;
	if (streaming) {
		unsigned long long t0 = now_ns();
		for (unsigned long long seq = 0; seq < count; seq++) {
			struct iovec iov = {.iov_base = buf, .iov_len = size};
			memcpy(buf, &seq, sizeof(seq));
			while ((err = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN) {
				check(cpg_dispatch(handle, CS_DISPATCH_ALL), "cpg_dispatch (flow control)");
				usleep(1000);
			}
			check(err, "cpg_mcast_joined");
		}
		while (count && delivered_seq != count - 1)
			check(cpg_dispatch(handle, CS_DISPATCH_ONE), "cpg_dispatch");
		printf("%llu\n", now_ns() - t0);
		free(buf);
		cpg_finalize(handle);
		return 0;
	}

	for (unsigned long long seq = 0; seq < count; seq++) {
		struct iovec iov = {.iov_base = buf, .iov_len = size};
		memcpy(buf, &seq, sizeof(seq));
		unsigned long long t0 = now_ns();
		do {
			err = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
		} while (err == CS_ERR_TRY_AGAIN);
		check(err, "cpg_mcast_joined");
		while (delivered_seq != seq)
			check(cpg_dispatch(handle, CS_DISPATCH_ONE), "cpg_dispatch");
		printf("%llu\n", now_ns() - t0);
		if (gap)
			usleep(gap);
	}
	free(buf);
	cpg_finalize(handle);
	return 0;
}
