/**
 * Queries compiled once per shape. Kysely builds and compiles a query anew at every call: for the
 * writes every run makes, that cost more than the database took to run them (about 70 µs to
 * compile an update of five columns, against 40 for SQLite to run it). A shape is built once with
 * a marker in place of each value that varies; later calls put their values where the markers
 * landed in the compiled parameters.
 *
 * The shape's name must tell apart everything that changes the SQL text (which columns are set,
 * how many values a list holds); values given as they are, not as markers, are kept as constants
 * of the shape.
 */
import { CompiledQuery, type Compilable } from 'kysely';

/** Stands for the value of one name until the shape is compiled. */
class Marker {
  constructor(readonly name: string) {}
}

type Fill = { name: string } | { constant: unknown };

export type MarkerOf<V> = (name: keyof V & string) => never;

export class CompiledQueries {
  readonly #shapes = new Map<string, { sql: string; fill: Fill[] }>();

  /**
   * The query of `shape` with `values` in it. `build` is called the first time only; `marker(name)`
   * stands for `values[name]` in it (typed `never` so it fits any column).
   */
  query<V extends Record<string, unknown>>(shape: string, values: V, build: (marker: MarkerOf<V>) => Compilable): CompiledQuery {
    let compiled = this.#shapes.get(shape);
    if (!compiled) {
      const query = build(((name: string) => new Marker(name)) as MarkerOf<V>).compile();
      compiled = { sql: query.sql, fill: query.parameters.map((parameter): Fill => (parameter instanceof Marker ? { name: parameter.name } : { constant: parameter })) };
      this.#shapes.set(shape, compiled);
    }
    const parameters = compiled.fill.map((fill) => {
      if (!('name' in fill)) return fill.constant;
      if (!(fill.name in values)) throw new Error(`query shape ${shape} needs a value for ${fill.name}`);
      return values[fill.name];
    });
    return CompiledQuery.raw(compiled.sql, parameters);
  }
}
