/* The core's IMAP client, as offered to plugins through gw_host::imap.
 * The implementation is split over imap_*.c: imap_io (socket + TLS with
 * timeouts), imap_parse (response tokenizer), imap_utf7 (folder names),
 * imap_cmd (tags, command/response loop, status mapping, trace), imap_auth,
 * imap_list, imap_fetch and this module, which connects, selects and owns
 * the API table. */
#ifndef GW_IMAP_CLIENT_H
#define GW_IMAP_CLIENT_H

#include <godwit/imap.h>

/* The table the host hands to plugins; static, never NULL. */
const struct gw_imap_api *gw_imap_client_api(void);

#endif
