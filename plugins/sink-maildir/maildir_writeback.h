/* Early write-back for the maildir sink. With fsync on, nothing reaches the
 * disk until flush syncs the file system, so the disk idles while a batch is
 * fetched and the network idles while flush waits for the disk. A thread
 * syncs the mailbox's file system whenever enough has been written since it
 * last did, so the disk works while the next messages arrive and flush finds
 * most of the batch already written. Durability still comes from flush alone:
 * this only moves work earlier. */
#ifndef GW_MAILDIR_WRITEBACK_H
#define GW_MAILDIR_WRITEBACK_H

#include <stdint.h>

struct md_writeback;

/* Sync the file system of @p fd (not owned) after every @p every_bytes
 * written. NULL if the thread cannot start: the sink then works without it. */
struct md_writeback *md_writeback_start(int fd, uint64_t every_bytes);
/* @p bytes more were written. Never waits for the disk. */
void md_writeback_note(struct md_writeback *w, uint64_t bytes);
/* Stop the thread (after the sync in progress, if any). NULL is a no-op. */
void md_writeback_stop(struct md_writeback *w);

#endif
