// The job's arguments: everything after `--` on `cairn run`.

/**
 * The job's arguments. Options are `--name VALUE` or `--name=VALUE`; anything else is a
 * positional argument.
 */
export class Args {
  /** @param {string[]} args */
  constructor(args) {
    /** All arguments, as given. @type {readonly string[]} */
    this.list = Object.freeze([...args]);
  }

  /**
   * The value of option `name` (for example `"--input"`), if given. The last one wins.
   * @param {string} name
   * @returns {string | undefined}
   */
  value(name) {
    let found;
    const args = this.list;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      if (arg === name) {
        found = args[++i];
      } else if (arg.startsWith(name + "=")) {
        found = arg.slice(name.length + 1);
      }
    }
    return found;
  }

  /**
   * Every value of an option given several times, in order.
   * @param {string} name
   * @returns {string[]}
   */
  values(name) {
    const found = [];
    const args = this.list;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      if (arg === name) {
        if (i + 1 < args.length) found.push(args[++i]);
      } else if (arg.startsWith(name + "=")) {
        found.push(arg.slice(name.length + 1));
      }
    }
    return found;
  }

  /**
   * The value of a required option.
   * @param {string} name
   * @returns {string}
   * @throws {Error} naming the option when it is missing
   */
  required(name) {
    const value = this.value(name);
    if (value === undefined) throw new Error(`missing required argument ${name}`);
    return value;
  }

  /**
   * The value of option `name` as a number, or `fallback` when it is absent.
   * @param {string} name
   * @param {number} fallback
   * @returns {number}
   * @throws {Error} naming the option when its value is not a number
   */
  number(name, fallback) {
    const raw = this.value(name);
    if (raw === undefined) return fallback;
    const n = raw.trim() === "" ? NaN : Number(raw);
    if (!Number.isFinite(n)) throw new Error(`invalid value ${JSON.stringify(raw)} for ${name}: not a number`);
    return n;
  }

  /**
   * Whether flag `name` (an option without a value, such as `--verbose`) is given.
   * @param {string} name
   * @returns {boolean}
   */
  flag(name) {
    return this.list.includes(name);
  }
}
