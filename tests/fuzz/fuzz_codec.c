/* fuzz_codec.c - libFuzzer target for the wire codec: the validator, the
 * document parser, every field accessor and the attribute decoder, on
 * arbitrary payload bytes. Besides "no crash, no sanitizer report" it checks
 * invariants and aborts when one breaks:
 *   - whatever gbx_mp_validate accepts, msgpack_unpack unpacks whole;
 *   - a parsed document re-packs (msgpack_pack_object) into a frame that
 *     parses again with the same number of root keys;
 *   - decoded attributes re-pack (gbx_attrs_pack) and decode to the same
 *     attributes, and their size is the sum of their parts.
 * Replayed over tests/fuzz/corpus/fuzz_codec by replay_main.c under ctest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbx_codec.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* A few ranges the server really uses, so both the in-range and the
 * out-of-range paths are reachable. */
static const struct {
  uint64_t min, max;
} ranges[] = {{0, GBX_VIS_MAX}, {1, GBX_MAX_RECEIVE}, {0, UINT64_MAX}};

/* Every accessor on one key of map; the error message must be terminated. */
static void exercise_key(const msgpack_object *map, const char *key) {
  gbx_errbuf_t eb;
  int present, b;
  uint64_t u;
  const char *p;
  uint32_t n;
  const msgpack_object_array *arr;
  const msgpack_object *m;

  for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
    gbx_err_t rc = gbx_get_u64(map, key, 1, ranges[i].min, ranges[i].max, &u, &present, &eb);
    if (rc == GBX_E_OK)
      CHECK(u >= ranges[i].min && u <= ranges[i].max);
    else
      CHECK(memchr(eb.msg, '\0', sizeof eb.msg) != NULL && eb.code == rc);
  }
  gbx_get_bool(map, key, 0, &b, &present, &eb);
  if (gbx_get_str(map, key, 1, 1, GBX_MAX_NAME, &p, &n, &present, &eb) == GBX_E_OK) {
    CHECK(n >= 1 && n <= GBX_MAX_NAME);
    gbx_name_valid(p, n);
    gbx_entry_id_valid(p, n);
  }
  if (gbx_get_bytes(map, key, 0, 64, &p, &n, &present, &eb) == GBX_E_OK && present)
    CHECK(n <= 64);
  if (gbx_get_array(map, key, 0, 1, GBX_MAX_BATCH, &arr, &present, &eb) == GBX_E_OK && present)
    CHECK(arr->size >= 1 && arr->size <= GBX_MAX_BATCH);
  if (gbx_get_map(map, key, 0, GBX_MAX_TAGS, &m, &present, &eb) == GBX_E_OK && present)
    CHECK(m->type == MSGPACK_OBJECT_MAP && gbx_map_keys_unique(m));
}

/* Decodes attrs; when they decode, packs them and decodes the copy. */
static void exercise_attrs(const msgpack_object *attrs) {
  gbx_attr_t a[GBX_MAX_ATTRS], back[GBX_MAX_ATTRS];
  uint32_t n = 0, n2 = 0;
  gbx_errbuf_t eb;
  gbx_buf_t buf;
  msgpack_packer pk;
  gbx_doc_t d;

  if (gbx_attrs_decode(attrs, a, &n, &eb) != GBX_E_OK) {
    CHECK(eb.code == GBX_E_BAD_ATTRIBUTE);
    return;
  }
  CHECK(n <= GBX_MAX_ATTRS);
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n; i++)
    sum += (uint64_t)a[i].name_len + a[i].type_len + a[i].value_len;
  CHECK(gbx_attrs_size(a, n) == sum);

  gbx_buf_init(&buf);
  msgpack_packer_init(&pk, &buf, gbx_buf_write_cb);
  msgpack_pack_map(&pk, 1);
  gbx_pack_cstr(&pk, "attrs");
  gbx_attrs_pack(&pk, a, n);
  CHECK(gbx_doc_parse(&d, buf.data, buf.len, &eb) == GBX_E_OK);
  CHECK(gbx_attrs_decode(gbx_map_get(&d.root, "attrs"), back, &n2, &eb) == GBX_E_OK);
  CHECK(n2 == n);
  for (uint32_t i = 0; i < n; i++) {
    CHECK(back[i].name_len == a[i].name_len && !memcmp(back[i].name, a[i].name, a[i].name_len));
    CHECK(back[i].type_len == a[i].type_len && !memcmp(back[i].type, a[i].type, a[i].type_len));
    CHECK(back[i].value_len == a[i].value_len &&
          !memcmp(back[i].value, a[i].value, a[i].value_len));
  }
  gbx_doc_free(&d);
  gbx_buf_free(&buf);
}

/* Re-encodes the root into a frame; the payload must parse again. */
static void exercise_repack(const msgpack_object *root) {
  gbx_buf_t buf;
  msgpack_packer pk;
  gbx_doc_t d;
  gbx_errbuf_t eb;
  uint32_t len = 0;

  gbx_buf_init(&buf);
  msgpack_packer_init(&pk, &buf, gbx_buf_write_cb);
  size_t off = gbx_frame_begin(&buf);
  CHECK(off == 0);
  CHECK(msgpack_pack_object(&pk, *root) == 0);
  gbx_frame_end(&buf, off);
  CHECK(gbx_frame_peek(buf.data, buf.len, &len) == 1);
  CHECK((size_t)len + GBX_FRAME_HDR == buf.len);
  CHECK(gbx_doc_parse(&d, buf.data + GBX_FRAME_HDR, len, &eb) == GBX_E_OK);
  CHECK(d.root.via.map.size == root->via.map.size);
  gbx_doc_free(&d);
  gbx_buf_free(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *keys[] = {"q", "body", "attrs", "entries", "max", "vis"};
  gbx_errbuf_t eb;
  gbx_doc_t d;

  /* Frames above the hard cap never reach the codec. */
  if (size > GBX_HARD_MAX_FRAME)
    return 0;
  gbx_err_t vrc = gbx_mp_validate(data, size, GBX_MAX_DEPTH, &eb);
  gbx_mp_validate(data, size, 2, NULL);
  gbx_mp_validate(data, size, 1000, NULL);

  /* What the validator accepts, msgpack-c unpacks whole. */
  if (vrc == GBX_E_OK) {
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    CHECK(msgpack_zone_init(&z, 1024));
    CHECK(msgpack_unpack((const char *)data, size, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS);
    CHECK(off == size);
    msgpack_zone_destroy(&z);
  }

  gbx_err_t rc = gbx_doc_parse(&d, data, size, &eb);
  if (rc != GBX_E_OK) {
    CHECK(rc == GBX_E_BAD_FRAME || rc == GBX_E_DUPLICATE_FIELD);
    CHECK(eb.code == rc && eb.msg[0] != '\0');
    if (vrc != GBX_E_OK)
      CHECK(rc == GBX_E_BAD_FRAME);
    return 0;
  }
  CHECK(vrc == GBX_E_OK);
  CHECK(d.root.type == MSGPACK_OBJECT_MAP && gbx_map_keys_unique(&d.root));

  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    exercise_key(&d.root, keys[i]);
  exercise_attrs(gbx_map_get(&d.root, "attrs"));

  /* Batch entries: each entry is read as the server would. */
  const msgpack_object_array *entries;
  int present;
  if (gbx_get_array(&d.root, "entries", 0, 1, GBX_MAX_BATCH, &entries, &present, &eb) == GBX_E_OK &&
      present) {
    for (uint32_t i = 0; i < entries->size; i++) {
      const msgpack_object *e = &entries->ptr[i];
      exercise_key(e, "eid");
      exercise_key(e, "body");
      exercise_key(e, "rh");
      exercise_key(e, "delay");
      exercise_attrs(gbx_map_get(e, "attrs"));
    }
  }
  exercise_repack(&d.root);
  gbx_doc_free(&d);
  return 0;
}
