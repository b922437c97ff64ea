/* A scripted IMAP peer for the IMAP client tests: a thread that accepts one
 * TCP connection on 127.0.0.1 and plays a list of steps (send bytes, expect a
 * command line, send a large literal, pause, close). It is a fixture, not a
 * mock: the client under test runs its real socket, parser and commands. */
#ifndef TEST_IMAP_PEER_H
#define TEST_IMAP_PEER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum peer_op {
	P_END = 0,
	P_SEND,            /* text, "$T" replaced by the tag of the last expected command */
	P_CHUNKED,         /* text in pieces of `size` bytes with a pause between them */
	P_EXPECT,          /* read a command line: "<tag> <text>" must match exactly */
	P_EXPECT_RAW,      /* read a line that must equal text exactly (no tag) */
	P_EXPECT_PREFIX,   /* read a command line: "<tag> <text>..." */
	P_LITERAL,         /* send `size` bytes of the pattern byte i%251 (a literal body) */
	P_LITERAL_TRICKLE, /* the same in pieces of 4 KiB, 20 ms apart */
	P_EXPECT_LITERAL,  /* read `size` bytes that must be that pattern (a literal sent) */
	P_RAW_BYTES,       /* send `size` bytes of 'a' with no line end */
	P_SLEEP,           /* pause `size` milliseconds */
	P_CLOSE,           /* close the connection now */
};

struct peer_step {
	enum peer_op op;
	const char *text;
	size_t size;
};

struct peer {
	int listen_fd;
	int fd;
	uint16_t port;
	pthread_t thread;
	const struct peer_step *steps;
	size_t step_count;
	char tag[64];
	char error[1024]; /* first deviation from the script, "" if none */
};

static void peer_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void peer_write(struct peer *p, const void *data, size_t len)
{
	const char *c = data;
	while (len > 0) {
		ssize_t n = send(p->fd, c, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		c += n, len -= (size_t)n;
	}
}

static void peer_send_text(struct peer *p, const char *text, size_t chunk)
{
	char out[65536];
	size_t o = 0;
	for (const char *s = text; *s && o < sizeof(out) - 64; s++) {
		if (s[0] == '$' && s[1] == 'T') {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", p->tag);
			s++;
		} else {
			out[o++] = *s;
		}
	}
	if (chunk == 0)
		chunk = o;
	for (size_t i = 0; i < o; i += chunk) {
		peer_write(p, out + i, o - i < chunk ? o - i : chunk);
		if (i + chunk < o)
			peer_sleep_ms(15);
	}
}

/* Read one line without its CRLF; false on EOF. */
static bool peer_read_line(struct peer *p, char *line, size_t size)
{
	size_t n = 0;
	for (;;) {
		char c;
		if (recv(p->fd, &c, 1, 0) != 1)
			return false;
		if (c == '\n')
			break;
		if (n + 1 < size)
			line[n++] = c;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return true;
}

static void peer_note(struct peer *p, const char *want, const char *got)
{
	if (p->error[0] == '\0')
		snprintf(p->error, sizeof(p->error), "expected \"%.480s\", got \"%.480s\"", want,
		         got);
}

static void peer_expect(struct peer *p, const char *want, bool tagged, bool prefix)
{
	char line[8192];
	if (!peer_read_line(p, line, sizeof(line))) {
		peer_note(p, want, "(EOF)");
		return;
	}
	const char *rest = line;
	if (tagged) {
		const char *sp = strchr(line, ' ');
		if (!sp) {
			peer_note(p, want, line);
			return;
		}
		snprintf(p->tag, sizeof(p->tag), "%.*s", (int)(sp - line), line);
		rest = sp + 1;
	}
	if (prefix ? strncmp(rest, want, strlen(want)) != 0 : strcmp(rest, want) != 0)
		peer_note(p, want, rest);
}

/* @p size bytes of the pattern (or of 'a'), in pieces of @p piece bytes
 * @p pause_ms apart. */
static void peer_send_pattern(struct peer *p, size_t size, bool pattern, size_t piece,
                              unsigned pause_ms)
{
	char buf[16384];
	size_t done = 0;
	while (done < size) {
		size_t n = size - done < piece ? size - done : piece;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern ? (char)((done + i) % 251) : 'a';
		peer_write(p, buf, n);
		done += n;
		if (done < size && pause_ms > 0)
			peer_sleep_ms(pause_ms);
	}
}

static void peer_expect_pattern(struct peer *p, size_t size)
{
	char buf[16384];
	size_t done = 0;
	while (done < size) {
		size_t want = size - done < sizeof(buf) ? size - done : sizeof(buf);
		ssize_t n = recv(p->fd, buf, want, 0);
		if (n <= 0) {
			peer_note(p, "the rest of a literal", "(EOF)");
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != (char)((done + (size_t)i) % 251)) {
				char at[64];
				snprintf(at, sizeof(at), "another byte at %zu", done + (size_t)i);
				peer_note(p, "the literal's pattern", at);
				return;
			}
		}
		done += (size_t)n;
	}
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	p->fd = accept(p->listen_fd, NULL, NULL);
	if (p->fd < 0) {
		snprintf(p->error, sizeof(p->error), "accept failed");
		return NULL;
	}
	int one = 1;
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (const struct peer_step *s = p->steps;
	     s < p->steps + p->step_count && s->op != P_END && s->op != P_CLOSE; s++) {
		switch (s->op) {
		case P_SEND: peer_send_text(p, s->text, 0); break;
		case P_CHUNKED: peer_send_text(p, s->text, s->size); break;
		case P_EXPECT: peer_expect(p, s->text, true, false); break;
		case P_EXPECT_RAW: peer_expect(p, s->text, false, false); break;
		case P_EXPECT_PREFIX: peer_expect(p, s->text, true, true); break;
		case P_LITERAL: peer_send_pattern(p, s->size, true, 16384, 0); break;
		case P_LITERAL_TRICKLE: peer_send_pattern(p, s->size, true, 4096, 20); break;
		case P_EXPECT_LITERAL: peer_expect_pattern(p, s->size); break;
		case P_RAW_BYTES: peer_send_pattern(p, s->size, false, 16384, 0); break;
		case P_SLEEP: peer_sleep_ms((unsigned)s->size); break;
		default: break;
		}
	}
	shutdown(p->fd, SHUT_WR);
	/* Drain what the client still sends (LOGOUT) so closing sends no RST. */
	char sink[4096];
	struct timeval tv = {.tv_sec = 0, .tv_usec = 300000};
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (recv(p->fd, sink, sizeof(sink), 0) > 0) {
	}
	close(p->fd);
	return NULL;
}

/* Play @p count steps (pass an array with PEER_STEPS). */
static void peer_start(struct peer *p, const struct peer_step *steps, size_t count)
{
	memset(p, 0, sizeof(*p));
	p->steps = steps;
	p->step_count = count;
	p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(p->listen_fd, 1) != 0 ||
	    getsockname(p->listen_fd, (struct sockaddr *)&addr, &len) != 0) {
		perror("peer");
		abort();
	}
	p->port = ntohs(addr.sin_port);
	pthread_create(&p->thread, NULL, peer_main, p);
}

/* Wait for the script to end; returns the first deviation ("" if none). */
static const char *peer_finish(struct peer *p)
{
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
	return p->error;
}

#define PEER_STEPS(array) (array), (sizeof(array) / sizeof((array)[0]))

#endif
