/* The pending marks of a flight (state.c: the messages of one folder in a
 * batch) packed into one blob and read back. Each record is its fields in
 * little-endian order (uidvalidity u32, uid u32, size u64, internal date
 * i64), then its origin key and its Message-ID, each as a u32 length and as
 * many bytes, the terminating NUL included (length 0: NULL). Only pending
 * fields are kept: a flight's records have no sink folder, sink id or hash. */
#ifndef GW_FLIGHT_PACK_H
#define GW_FLIGHT_PACK_H

#include <stdbool.h>
#include <stddef.h>

#include "state.h"
#include "util.h"

void gw_flight_pack(struct gw_buf *out, const struct gw_state_record *r);

/* The record at *@p at of @p blob (@p len bytes) into *@p r, its strings
 * pointing into the blob; *@p at moves past it. False if the blob ends or is
 * damaged there (*@p at unchanged). */
bool gw_flight_unpack(const unsigned char *blob, size_t len, size_t *at, struct gw_state_record *r);

#endif
