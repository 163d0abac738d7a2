/* text.h - what Gearbox keeps as text. Names, tags, display names and
 * policy documents are held as C strings and shown on both faces (XML and
 * JSON on the AWS face), so what a client sets must be text that survives
 * that: UTF-8 made of XML 1.0 characters (SQS's rule for message bodies: no
 * NUL, no control characters but tab, LF and CR), and JSON documents free of
 * the \u0000 escape, which cJSON would end a string at. Checked where a
 * client sets a value, never where the store is read back (values kept
 * before a rule existed still load). */
#ifndef GBX_TEXT_H
#define GBX_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* What utf8_next returns, plus the byte, for a byte that starts no
 * well-formed sequence: above every code point, equal only to itself. */
#define UTF8_MALFORMED 0x110000u
/* The code point at p[*i] (i < n), advancing *i past it; or UTF8_MALFORMED
 * + p[*i], advancing one byte, where no well-formed UTF-8 sequence starts
 * (truncated, a stray continuation byte, an overlong form, a surrogate, a
 * value above U+10FFFF). */
uint32_t utf8_next(const uint8_t *p, size_t n, size_t *i);
/* 1 if p[0..n) is well-formed UTF-8. */
int utf8_valid(const uint8_t *p, size_t n);
/* 1 if p[0..n) is UTF-8 made of XML 1.0 characters (#x9 #xA #xD
 * #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF); else 0 and *bad the first
 * offender's code point (0xFFFFFFFF for malformed UTF-8). */
int text_valid(const uint8_t *p, size_t n, uint32_t *bad);
/* 1 if a JSON text holds U+0000, raw or as the escape \u0000. */
int json_has_nul(const char *p, size_t n);
/* 1 if p[0..n) is text (text_valid) and, as JSON, free of \u0000: what a
 * policy document or filter policy must be. */
int text_json_valid(const char *p, size_t n);

#endif
