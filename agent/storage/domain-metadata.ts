// Domain metadata, in two encodings of the same fields (DomainMetadata).
//
// File domains: <root>/<sdUUID>/dom_md/metadata, KEY=value lines ending with EOF:
//   VERSION=1, SDUUID, TYPE=file, CLASS, DESCRIPTION, POOL_UUID, ROLE
// It is written to a temp file and renamed; the domain exists once it does.
//
// Block domains: VG tags, readable with `vgs` on any host without activating
// anything, and changed atomically by one `vgchange --deltag/--addtag`:
//   HV_SD                       marks a Hostvisor storage domain VG
//   HVMD_VERSION=1
//   HVMD_CLASS=Data
//   HVMD_DESCRIPTION=<escaped>  every byte outside [A-Za-z0-9_+.:/-] as &XX (hex of the UTF-8 byte)
//   HVMD_POOL_UUID=<uuid or blank UUID>
//   HVMD_ROLE=Regular|Master
// The VG name is the sdUUID.
import { StorageParamsError, DomainLayoutError } from './errors.js';
import { BLANK_UUID, type DomainClass, type DomainMetadata, type DomainRole } from './types.js';

export const DOMAIN_MD_VERSION = 1;
export const SD_TAG = 'HV_SD';
const TAG_PREFIX = 'HVMD_';
export const MAX_DOMAIN_DESCRIPTION = 50;
const CLASSES: readonly DomainClass[] = ['Data', 'Iso', 'Backup'];
const ROLES: readonly DomainRole[] = ['Regular', 'Master'];

export function checkDomainDescription(d: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(d)) throw new StorageParamsError('domain description must not contain control characters');
  if (Buffer.byteLength(d) > MAX_DOMAIN_DESCRIPTION) throw new StorageParamsError(`domain description is longer than ${MAX_DOMAIN_DESCRIPTION} bytes`);
  return d;
}

function fieldsOf(md: DomainMetadata): Array<[string, string]> {
  checkDomainDescription(md.description);
  return [
    ['VERSION', String(md.version)],
    ['CLASS', md.class],
    ['DESCRIPTION', md.description],
    ['POOL_UUID', md.poolUUID || BLANK_UUID],
    ['ROLE', md.role],
  ];
}

function fromFields(sdUUID: string, type: DomainMetadata['type'], f: Map<string, string>): DomainMetadata {
  const get = (k: string): string => {
    const v = f.get(k);
    if (v === undefined) throw new DomainLayoutError(sdUUID, `domain metadata lacks ${k}`);
    return v;
  };
  const version = Number(get('VERSION'));
  if (version !== DOMAIN_MD_VERSION) throw new DomainLayoutError(sdUUID, `unsupported domain metadata version ${get('VERSION')}`);
  const cls = get('CLASS') as DomainClass;
  const role = get('ROLE') as DomainRole;
  if (!CLASSES.includes(cls)) throw new DomainLayoutError(sdUUID, `unknown domain class ${cls}`);
  if (!ROLES.includes(role)) throw new DomainLayoutError(sdUUID, `unknown domain role ${role}`);
  return { sdUUID, type, class: cls, description: f.get('DESCRIPTION') ?? '', version, poolUUID: get('POOL_UUID'), role };
}

export function encodeFileDomainMetadata(md: DomainMetadata): string {
  const lines = [`SDUUID=${md.sdUUID}`, 'TYPE=file', ...fieldsOf(md).map(([k, v]) => `${k}=${v}`), 'EOF'];
  return lines.join('\n') + '\n';
}

export function decodeFileDomainMetadata(sdUUID: string, text: string): DomainMetadata {
  const f = new Map<string, string>();
  let ended = false;
  for (const line of text.split('\n')) {
    if (line === 'EOF') { ended = true; break; }
    const eq = line.indexOf('=');
    if (eq > 0) f.set(line.slice(0, eq), line.slice(eq + 1));
  }
  if (!ended) throw new DomainLayoutError(sdUUID, 'domain metadata file has no EOF line');
  if (f.get('SDUUID') !== sdUUID) throw new DomainLayoutError(sdUUID, `domain metadata names domain ${f.get('SDUUID')}`);
  if (f.get('TYPE') !== 'file') throw new DomainLayoutError(sdUUID, `domain metadata has type ${f.get('TYPE')}`);
  return fromFields(sdUUID, 'file', f);
}

export function escapeTagValue(v: string): string {
  let out = '';
  for (const byte of Buffer.from(v, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_+.:/-]/.test(c) ? c : `&${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

export function unescapeTagValue(v: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < v.length; i++) {
    if (v[i] === '&' && /^[0-9a-f]{2}$/i.test(v.slice(i + 1, i + 3))) {
      bytes.push(parseInt(v.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(v.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The VG tags that carry this metadata (SD_TAG included). */
export function encodeVgTags(md: DomainMetadata): string[] {
  return [SD_TAG, ...fieldsOf(md).map(([k, v]) => `${TAG_PREFIX}${k}=${escapeTagValue(v)}`)];
}

export function decodeVgTags(sdUUID: string, tags: readonly string[]): DomainMetadata {
  if (!tags.includes(SD_TAG)) throw new DomainLayoutError(sdUUID, `VG lacks the ${SD_TAG} tag: not a storage domain`);
  const f = new Map<string, string>();
  for (const t of tags) {
    if (!t.startsWith(TAG_PREFIX)) continue;
    const eq = t.indexOf('=');
    if (eq > 0) f.set(t.slice(TAG_PREFIX.length, eq), unescapeTagValue(t.slice(eq + 1)));
  }
  return fromFields(sdUUID, 'block', f);
}

/** Only the HVMD_ tags: what an update replaces. */
export function metadataTags(tags: readonly string[]): string[] {
  return tags.filter((t) => t.startsWith(TAG_PREFIX));
}
