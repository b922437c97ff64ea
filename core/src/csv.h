/* The mailbox list: RFC 4180 CSV with Microsoft's IMAP-migration header
 * EmailAddress,UserName,Password (header names case-insensitive, in any
 * order; extra columns kept). UTF-8 with or without BOM, CRLF or LF, quoted
 * fields with commas, quotes and newlines. A bad row is reported with its
 * line number and skipped; the others are kept. */
#ifndef GW_CSV_H
#define GW_CSV_H

#include <stddef.h>

#include <godwit/types.h>

#include "diag.h"

struct gw_mailbox_entry {
	struct gw_mailbox mbx; /* what plugins see; strings owned by the entry */
	unsigned line;         /* where the row starts in the file (1-based); for inline entries the
	                        * line passed to gw_mailbox_list_add (0 if unknown) */
};

struct gw_mailbox_list {
	struct gw_mailbox_entry *items;
	size_t count;
	char **extra_names; /* shared by every entry (mbx.extra_names points here) */
	size_t extra_count;
};

/* Parse @p path into @p out (initialised by the call). Errors and warnings go
 * to @p diag with file:line:column: syntax errors at the offending character,
 * row problems at line:1 of the row's first line. Blank lines are ignored; an
 * empty Password cell or a missing Password column gives a NULL password; a
 * missing UserName column gives "". An unterminated quote stops the parse.
 * Returns false only if the file cannot be used at all (unreadable, no valid
 * header); bad rows are skipped and reported, and the good ones are in @p out.
 * Passwords written as secret references (${...}) are resolved. */
bool gw_csv_load(const char *path, struct gw_mailbox_list *out, struct gw_diag *diag);
/* The same from memory (tests); @p name is used in messages. */
bool gw_csv_parse(const char *name, const char *data, size_t len, struct gw_mailbox_list *out,
                  struct gw_diag *diag);
/* Append one mailbox (inline in the profile); duplicate emails are an error for the second.
 * @p password may be a secret reference; errors are reported at @p file:@p line. */
bool gw_mailbox_list_add(struct gw_mailbox_list *list, const char *email, const char *username,
                         const char *password, const char *file, unsigned line,
                         struct gw_diag *diag);
void gw_mailbox_list_free(struct gw_mailbox_list *list);

#endif
