import type { Config } from '../config/load.js';
import type { OffsiteSettings } from '../config/schema.js';
import { LocalStorage } from './local-storage.js';
import { S3Storage } from './s3-storage.js';
import type { Storage } from './storage.js';

/** The local `backup_dir`: where every backup is written first. */
export function openLocalStorage(config: Config): LocalStorage {
  return new LocalStorage(config.backup.backup_dir);
}

/** One Storage per `backup.offsite` entry, in config order (the order restore looks in). */
export function openOffsiteStorages(config: Config): Storage[] {
  return config.backup.offsite.map(openOffsiteStorage);
}

export function openOffsiteStorage(settings: OffsiteSettings): Storage {
  // `type` has one value today; a new type is a new case here and a new Storage class.
  return new S3Storage({
    endpoint: settings.endpoint,
    bucket: settings.bucket,
    prefix: settings.prefix,
    region: settings.region,
    accessKeyId: settings.access_key_id,
    secretAccessKey: settings.secret_access_key,
    forcePathStyle: settings.force_path_style,
  });
}
