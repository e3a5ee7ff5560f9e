import {
  type DatabaseIntrospector,
  type DatabaseMetadata,
  type Kysely,
  PostgresDialect,
  type SchemaMetadata,
  sql,
  type TableMetadata,
} from 'kysely';

/**
 * Kysely's PostgreSQL introspector (used by its Migrator to find its own tables) reads every
 * schema in the database and calls pg_get_serial_sequence on each column: a schema dropped or a
 * column renamed by another client in that instant failed our migration (`schema "…" does not
 * exist`, `column "…" of relation "…" does not exist`: both seen in CI, where every test has its
 * own schema and graphile-worker migrates its own beside ours). This one reads the current schema
 * (the store's search_path) straight from the catalog, in one snapshot: no other schema's DDL can
 * fail it.
 */
class CurrentSchemaIntrospector implements DatabaseIntrospector {
  constructor(private readonly db: Kysely<any>) {}

  async getSchemas(): Promise<SchemaMetadata[]> {
    const r = await sql<{ name: string }>`SELECT current_schema() AS name`.execute(this.db);
    return r.rows.filter((s) => s.name !== null);
  }

  async getTables(): Promise<TableMetadata[]> {
    const r = await sql<{ name: string; schema: string; kind: string }>`
      SELECT c.relname AS name, n.nspname AS schema, c.relkind AS kind
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm')`.execute(this.db);
    // The migrator only asks whether its tables exist; columns are not read.
    return r.rows.map((t) => ({
      name: t.name,
      schema: t.schema,
      isView: t.kind === 'v' || t.kind === 'm',
      columns: [],
    }));
  }

  async getMetadata(): Promise<DatabaseMetadata> {
    return { tables: await this.getTables() };
  }
}

export class ScopedPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new CurrentSchemaIntrospector(db);
  }
}
