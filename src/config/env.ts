/**
 * `${VAR}` and `${VAR:-default}` in string values are replaced from the environment,
 * so secrets stay out of the file. `$${` is a literal `${`.
 */
export function expandEnv(
  value: string,
  env: NodeJS.ProcessEnv,
  onMissing: (name: string) => void,
): string {
  return value.replace(/\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}/g, (match, name?: string, hasDefault?: string, fallback?: string) => {
    if (match === '$${') return '${';
    const found = env[name!];
    // As in shells and docker compose: `:-` also replaces a variable that is set but empty.
    if (hasDefault !== undefined) return found !== undefined && found !== '' ? found : (fallback ?? '');
    if (found !== undefined) return found;
    onMissing(name!);
    return '';
  });
}

/** Applies `expandEnv` to every string in a parsed YAML tree; `problems` get one line per unset variable. */
export function expandEnvDeep(node: unknown, env: NodeJS.ProcessEnv, problems: string[], path: string[] = []): unknown {
  if (typeof node === 'string') {
    return expandEnv(node, env, (name) =>
      problems.push(`${path.join('.') || '(root)'}: environment variable ${name} is not set (use \${${name}:-default} for a fallback)`),
    );
  }
  if (Array.isArray(node)) return node.map((item, i) => expandEnvDeep(item, env, problems, [...path, String(i)]));
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node).map(([key, value]) => [key, expandEnvDeep(value, env, problems, [...path, key])]),
    );
  }
  return node;
}
