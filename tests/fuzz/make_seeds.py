#!/usr/bin/env python3
"""make_seeds.py - write the seed corpora of the fuzz targets:
corpus/msgpack/seed_* (MessagePack, valid and invalid) and corpus/json/seed_*.

Seeds cover every format family and each rule the decoders enforce, so the
fuzzer starts next to every branch. Files named crash_* are inputs that once
failed (kept after the fix so that every build replays them); this script
never touches them. Run it from anywhere: python3 tests/fuzz/make_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


class Err:
    """parmap's error value: ext type 1 around [index, code, message]."""
    def __init__(self, index, code, message):
        self.index, self.code, self.message = index, code, message


class Raw:
    """Bytes written as they are (to build invalid input)."""
    def __init__(self, b):
        self.b = b


def enc_len(n, fix, fix_max, t8, t16, t32):
    if fix is not None and n <= fix_max:
        return bytes([fix | n])
    if t8 is not None and n <= 0xff:
        return bytes([t8, n])
    if n <= 0xffff:
        return bytes([t16]) + struct.pack('>H', n)
    return bytes([t32]) + struct.pack('>I', n)


def enc(v):
    if isinstance(v, Raw):
        return v.b
    if v is None:
        return b'\xc0'
    if v is True:
        return b'\xc3'
    if v is False:
        return b'\xc2'
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack('>b', v)
        if v >= 0:
            for tag, fmt, lim in ((0xcc, '>B', 0xff), (0xcd, '>H', 0xffff),
                                  (0xce, '>I', 0xffffffff), (0xcf, '>Q', 2**64 - 1)):
                if v <= lim:
                    return bytes([tag]) + struct.pack(fmt, v)
        for tag, fmt, lim in ((0xd0, '>b', 2**7), (0xd1, '>h', 2**15),
                              (0xd2, '>i', 2**31), (0xd3, '>q', 2**63)):
            if v >= -lim:
                return bytes([tag]) + struct.pack(fmt, v)
    if isinstance(v, float):
        return b'\xcb' + struct.pack('>d', v)
    if isinstance(v, str):
        b = v.encode('utf-8')
        return enc_len(len(b), 0xa0, 31, 0xd9, 0xda, 0xdb) + b
    if isinstance(v, bytes):
        return enc_len(len(v), None, 0, 0xc4, 0xc5, 0xc6) + v
    if isinstance(v, list):
        return enc_len(len(v), 0x90, 15, None, 0xdc, 0xdd) + b''.join(enc(x) for x in v)
    if isinstance(v, dict):
        return enc_len(len(v), 0x80, 15, None, 0xde, 0xdf) + b''.join(
            enc(k) + enc(x) for k, x in v.items())
    if isinstance(v, Err):
        p = enc([v.index, v.code, v.message])
        fixext = {1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8}
        head = bytes([fixext[len(p)]]) if len(p) in fixext else enc_len(
            len(p), None, 0, 0xc7, 0xc8, 0xc9)
        return head + b'\x01' + p
    raise TypeError(v)


def nest(depth):
    v = []
    for _ in range(depth - 1):
        v = [v]
    return v


MSGPACK = {
    'nil': enc(None),
    'bools': enc([True, False]),
    'ints': enc([0, 1, 127, 128, 255, 256, 65535, 65536, 2**32, 2**63 - 1,
                 -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]),
    'floats': enc([1.5, -0.0, float('inf'), float('nan'), 5e-324]) + b'',
    'float32': b'\x92\xca\x3f\xc0\x00\x00\xca\x7f\xc0\x00\x00',
    'uint64_big': b'\xcf\xff\xff\xff\xff\xff\xff\xff\xff',
    'nonminimal_ints': b'\x93\xd3\x00\x00\x00\x00\x00\x00\x00\x01\xcd\x00\x05\xd0\x07',
    'strings': enc(['', 'hello', 'x' * 31, 'y' * 32, 'z' * 300, 'caf\u00e9 \u20ac \U0001F600',
                    'nul\x00inside']),
    'bins': enc([b'', b'\x00\xff', bytes(range(256)) + b'!']),
    'map': enc({'a': 1, 'b': [True, None], 'c': {'d': 'e'}, '': 0}),
    'map16': enc({('k%d' % i): i for i in range(20)}),
    'depth64': enc(nest(64)),
    'depth65': enc(nest(65)),
    'errors': enc([Err(0, 1, ''), Err(3, -1, 'bad item'), Err(2**64 - 1, 2**31 - 1, 'm' * 300)]),
    'error_nonminimal': b'\xc7\x04\x01\x93\x00\x01\xa0',
    'doc': enc({'items': [[1, {'opt': True}], [[1, 2], {}]], 'args': [1.25, 'x'],
                'kwargs': {'scale': 2, 'name': 'n\u00e9'}, 'blob': b'\x01\x02',
                'err': Err(7, 42, 'boom')}),
    'bad_utf8': b'\xa2\xc3\x28',
    'bad_key': b'\x81\x01\x02',
    'dup_key': b'\x82\xa1\x61\x01\xa1\x61\x02',
    'ext_timestamp': b'\xd6\xff\x00\x00\x00\x01',
    'ext_bad_payload': b'\xd6\x01\x93\x00\x01\x01',
    'reserved_c1': b'\xc1',
    'huge_array': b'\xdd\xff\xff\xff\xff\x00',
    'huge_str': b'\xdb\xff\xff\xff\xff',
    'truncated_map': b'\x83\xa1\x61\xc0\xa1\x62',
    'two_values': b'\x01\x92\xc3\xc0',
}

JSON = {
    'doc': b'{"a":[1,-2,3.5,"s",null,true,false,[],{}],"b":{"c":{"d":[[["deep"]]]}}}',
    'escapes': b'["\\"\\\\\\/\\b\\f\\n\\r\\t","\\u00e9\\u20ac\\ud83d\\ude00","\\u0000"]',
    'numbers': b'[0,-0,1e2,1E-2,-1.5e+300,9223372036854775807,-9223372036854775808,'
               b'9223372036854775808,1e999,0.1]',
    'tags': b'[{"$bytes":"00ff"},{"$error":{"index":1,"code":-1,"message":"m"}},'
            b'{"$bytes":"zz"},{"$error":{"index":1}}]',
    'whitespace': b' \t\r\n{ "k" : [ 1 , 2 ] }\n',
    'depth64': b'[' * 64 + b']' * 64,
    'depth65': b'[' * 65 + b']' * 65,
    'dup_key': b'{"a":1,"a":2}',
    'trailing_comma': b'[1,2,]',
    'lone_surrogate': b'"\\ud800"',
    'bad_utf8': b'"\xc3\x28"',
    'vectors_case': b'{"name":"row 5","function":"echo","items":[[1,{"opt":true}]],'
                    b'"options":{"kwstar":true,"args":["x"],"kwargs":{"a":1}},'
                    b'"expect":{"results":[{"args":[1,"x"],"kwargs":{"a":1,"opt":true}}]}}',
}


def write(kind, seeds):
    d = os.path.join(HERE, 'corpus', kind)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, 'seed_' + name), 'wb') as f:
            f.write(data)
    print('%d seeds in %s' % (len(seeds), d))


if __name__ == '__main__':
    write('msgpack', MSGPACK)
    write('json', JSON)
