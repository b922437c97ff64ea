/* Packing of a flight's records (flight_pack.h). Fixed byte order, so a
 * state file stays readable on any machine. */
#include "flight_pack.h"

#include <stdint.h>
#include <string.h>

static void put_u32(struct gw_buf *out, uint32_t v)
{
	unsigned char b[4];
	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	gw_buf_append(out, b, sizeof(b));
}

static void put_u64(struct gw_buf *out, uint64_t v)
{
	put_u32(out, (uint32_t)v);
	put_u32(out, (uint32_t)(v >> 32));
}

static void put_text(struct gw_buf *out, const char *s)
{
	size_t n = s != NULL ? strlen(s) + 1 : 0;
	put_u32(out, (uint32_t)n);
	gw_buf_append(out, s, n);
}

void gw_flight_pack(struct gw_buf *out, const struct gw_state_record *r)
{
	put_u32(out, r->uidvalidity);
	put_u32(out, r->uid);
	put_u64(out, r->size);
	put_u64(out, (uint64_t)r->internal_date);
	put_text(out, r->origin_key);
	put_text(out, r->message_id);
}

struct reader {
	const unsigned char *blob;
	size_t len, at;
	bool ok;
};

static uint32_t get_u32(struct reader *rd)
{
	if (!rd->ok || rd->len - rd->at < 4) {
		rd->ok = false;
		return 0;
	}
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)rd->blob[rd->at + i] << (8 * i);
	rd->at += 4;
	return v;
}

static uint64_t get_u64(struct reader *rd)
{
	uint64_t low = get_u32(rd);
	return low | (uint64_t)get_u32(rd) << 32;
}

/* A string written by put_text: NUL-terminated within its length, none before. */
static const char *get_text(struct reader *rd)
{
	uint32_t n = get_u32(rd);
	if (!rd->ok || n == 0)
		return NULL;
	const char *s = (const char *)rd->blob + rd->at;
	if (rd->len - rd->at < n || memchr(s, '\0', n) != s + n - 1) {
		rd->ok = false;
		return NULL;
	}
	rd->at += n;
	return s;
}

bool gw_flight_unpack(const unsigned char *blob, size_t len, size_t *at, struct gw_state_record *r)
{
	struct reader rd = {.blob = blob, .len = len, .at = *at, .ok = *at <= len};
	struct gw_state_record out = {0};
	out.uidvalidity = get_u32(&rd);
	out.uid = get_u32(&rd);
	out.size = get_u64(&rd);
	out.internal_date = (int64_t)get_u64(&rd);
	out.origin_key = get_text(&rd);
	out.message_id = get_text(&rd);
	if (!rd.ok)
		return false;
	*r = out;
	*at = rd.at;
	return true;
}
