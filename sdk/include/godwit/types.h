/**
 * @file godwit/types.h
 * @brief Data exchanged between the core and plugins: mailboxes, folders,
 *        message metadata and message bytes.
 *
 * All structs that cross the boundary start with @c struct_size so they can
 * grow at the end in later ABI minors; readers check it before touching a
 * field added later. The core fills them; plugins only read, except where a
 * field says otherwise.
 */
#ifndef GODWIT_TYPES_H
#define GODWIT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One mailbox to migrate: a CSV row (EmailAddress,UserName,Password,...). */
struct gw_mailbox {
	size_t struct_size;
	const char *email;    /**< EmailAddress column, never NULL. */
	const char *username; /**< UserName column; may be empty. */
	const char *password; /**< Password column, secrets resolved; may be NULL. Never log it. */
	size_t extra_count;   /**< Number of extra CSV columns. */
	const char *const *extra_names;  /**< Header names of extra columns, as written. */
	const char *const *extra_values; /**< Values of extra columns for this row. */
};

/** Well-known folder roles (RFC 6154 SPECIAL-USE and INBOX). */
enum gw_folder_role {
	GW_ROLE_NONE = 0,
	GW_ROLE_INBOX,
	GW_ROLE_SENT,
	GW_ROLE_DRAFTS,
	GW_ROLE_TRASH,
	GW_ROLE_JUNK,
	GW_ROLE_ARCHIVE,
	GW_ROLE_ALL,     /**< \All (Gmail's All Mail) */
	GW_ROLE_FLAGGED, /**< \Flagged (virtual "Starred") */
	GW_ROLE_IMPORTANT,
};

/** A folder as listed by a source. */
struct gw_folder_info {
	size_t struct_size;
	const char *name;         /**< Full name in UTF-8, components joined by @c delimiter. */
	char delimiter;           /**< Hierarchy delimiter; 0 for a flat namespace. */
	enum gw_folder_role role; /**< From SPECIAL-USE or equivalent, else GW_ROLE_NONE. */
	bool selectable;          /**< False for \Noselect / \NonExistent containers. */
};

/** A folder path handed to a sink: split into components, so no delimiter is assumed. */
struct gw_folder_path {
	size_t struct_size;
	size_t count;                  /**< Number of components (>= 1). */
	const char *const *components; /**< UTF-8 names, none empty. */
	enum gw_folder_role role;      /**< Carried over from the source. */
};

/** What a source reports when a folder is selected. */
struct gw_folder_status {
	size_t struct_size;
	uint32_t uidvalidity;   /**< Changes invalidate every UID seen before. */
	uint32_t uidnext;       /**< Next UID the server will assign; 0 if unknown. */
	uint32_t exists;        /**< Number of messages. */
	uint64_t highestmodseq; /**< CONDSTORE, 0 if unsupported. */
};

/** System flags, as bits. */
enum gw_flag {
	GW_FLAG_SEEN = 1u << 0,
	GW_FLAG_ANSWERED = 1u << 1,
	GW_FLAG_FLAGGED = 1u << 2,
	GW_FLAG_DELETED = 1u << 3,
	GW_FLAG_DRAFT = 1u << 4,
	GW_FLAG_FORWARDED = 1u << 5, /**< $Forwarded keyword, Maildir 'P'. */
};

/** Metadata of one message, as scanned by a source. Pointers are valid only during the callback. */
struct gw_message_meta {
	size_t struct_size;
	uint32_t uid;          /**< Unique within the folder and its uidvalidity. */
	uint64_t size;         /**< Size in bytes, as the server reports it (RFC822.SIZE). */
	int64_t internal_date; /**< Seconds since the epoch (UTC). */
	int32_t tz_offset_min; /**< Zone the date was given in, minutes east of UTC. */
	uint32_t flags;        /**< enum gw_flag bits. */
	size_t keyword_count;  /**< Keywords other than the ones mapped into @c flags. */
	const char *const *keywords;
	const char *message_id; /**< Message-ID header value, NULL if not scanned or absent. */
	const char
	        *stable_id; /**< Server-side id that survives moves (e.g. X-GM-MSGID), or NULL. */
};

/** Bytes of one message, handed to a sink. Exactly what the source served. */
struct gw_message {
	size_t struct_size;
	const struct gw_message_meta *meta; /**< Flags, date, keywords. */
	const unsigned char *data;          /**< @c size bytes, contiguous, read-only. */
	size_t size;
	const char *sha256_hex; /**< Lower-case hex digest of @c data. */
	/**
	 * Since ABI 1.1 (check with GW_MESSAGE_HAS): true when the same @c size bytes
	 * are also in a file, @c file_fd from offset 0. The core spools large messages
	 * to a file and maps it as @c data; a sink that copies the file in the kernel
	 * (sendfile, copy_file_range with an offset of its own) never pulls those pages
	 * into the process. Valid during the call only: do not close the descriptor or
	 * move its file offset.
	 */
	bool in_file;
	int file_fd;
};

/** True if @p msg is new enough to have @p member. */
#define GW_MESSAGE_HAS(msg, member)                                                                \
	((msg)->struct_size >= offsetof(struct gw_message, member) + sizeof((msg)->member))

#ifdef __cplusplus
}
#endif
#endif
