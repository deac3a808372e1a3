// google.protobuf.Struct and Value in proto-loader form -> plain JSON. Apart from proto-json.ts
// (which needs protobufjs): workers read Struct config (metadata) without loading protobufjs.

import { isPlainObject } from './wkt.ts';

type Obj = Record<string, unknown>;

/** A Struct in proto-loader form ({fields: {k: Value}}) -> plain JSON object. */
export function structToJson(s: unknown): Obj {
  const out: Obj = {};
  const fields = isPlainObject(s) ? s['fields'] : undefined;
  if (isPlainObject(fields)) for (const [k, v] of Object.entries(fields)) out[k] = valueToJson(v);
  return out;
}

/** A Value in proto-loader form (camelCase member names, see json-decode.ts) -> plain JSON. */
export function valueToJson(v: unknown): unknown {
  if (!isPlainObject(v)) return null;
  switch (String(v['kind']).replace('_v', 'V')) {
    case 'numberValue': return member(v, 'numberValue');
    case 'stringValue': return member(v, 'stringValue');
    case 'boolValue': return member(v, 'boolValue');
    case 'structValue': return structToJson(member(v, 'structValue'));
    case 'listValue': {
      const l = member(v, 'listValue');
      return isPlainObject(l) && Array.isArray(l['values']) ? l['values'].map(valueToJson) : [];
    }
    default: return null;
  }
}

function member(v: Obj, camel: string): unknown {
  return v[camel] ?? v[camel.replace(/V/, '_v')];
}
