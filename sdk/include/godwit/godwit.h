/**
 * @file godwit/godwit.h
 * @brief Umbrella header of the godwit plugin SDK: include this one.
 */
#ifndef GODWIT_GODWIT_H
#define GODWIT_GODWIT_H

#include <godwit/host.h>
#include <godwit/imap.h>
#include <godwit/options.h>
#include <godwit/plugin.h>
#include <godwit/sink.h>
#include <godwit/source.h>
#include <godwit/status.h>
#include <godwit/types.h>

#endif
