/* Message metadata helpers of the IMAP client (also used by its tests). */
#ifndef GW_IMAP_FETCH_H
#define GW_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse an INTERNALDATE ("17-Jul-1996 02:44:25 -0700"; the day may be
 * space-padded) into seconds since the epoch (UTC) and the zone's offset in
 * minutes east of UTC. False for anything malformed or out of range. */
bool gw_imap_parse_internaldate(const char *text, int64_t *epoch, int32_t *tz_offset_min);

/* Write @p epoch as an INTERNALDATE in the zone @p tz_offset_min minutes east
 * of UTC ("05-Jan-2021 09:03:07 +0100"). False (and nothing written) for a
 * year outside 1000-9999 or an offset of a day or more. */
bool gw_imap_format_internaldate(int64_t epoch, int32_t tz_offset_min, char out[32]);

/* The GW_FLAG_* bit of a system flag or of $Forwarded (case-insensitive);
 * 0 for \Recent, other backslash flags and keywords. */
uint32_t gw_imap_flag_bit(const char *flag);

/* True if @p flag is a keyword to report (not a backslash flag, not $Forwarded). */
bool gw_imap_is_keyword(const char *flag);

#endif
