/**
 * Runs an Argo CD Lua health check the way Argo CD does: the live object as the global
 * `obj`, the script's returned table read back as { status, message }. Lua is fengari, a
 * Lua 5.3 VM in JavaScript (Argo CD embeds gopher-lua, 5.1; the checks use the common subset).
 */
// fengari ships no type declarations.
const { lua, lauxlib, lualib, to_luastring, to_jsstring } = require('fengari');

export interface HealthStatus {
  status: string;
  message: string;
}

export function runHealthCheck(script: string, obj: unknown): HealthStatus {
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  pushValue(L, obj);
  lua.lua_setglobal(L, to_luastring('obj'));
  if (lauxlib.luaL_loadstring(L, to_luastring(script)) !== lua.LUA_OK || lua.lua_pcall(L, 0, 1, 0) !== lua.LUA_OK) {
    throw new Error(`Lua error: ${to_jsstring(lua.lua_tostring(L, -1))}`);
  }
  const field = (name: string) => {
    lua.lua_getfield(L, -1, to_luastring(name));
    const value = lua.lua_isnil(L, -1) ? '' : to_jsstring(lua.lua_tostring(L, -1));
    lua.lua_pop(L, 1);
    return value;
  };
  return { status: field('status'), message: field('message') };
}

function pushValue(L: unknown, value: unknown): void {
  if (value === null || value === undefined) lua.lua_pushnil(L);
  else if (typeof value === 'boolean') lua.lua_pushboolean(L, value);
  else if (typeof value === 'number') lua.lua_pushnumber(L, value);
  else if (typeof value === 'string') lua.lua_pushstring(L, to_luastring(value));
  else if (Array.isArray(value)) {
    lua.lua_createtable(L, value.length, 0);
    value.forEach((item, i) => {
      pushValue(L, item);
      lua.lua_rawseti(L, -2, i + 1);
    });
  } else {
    lua.lua_newtable(L);
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      pushValue(L, item);
      lua.lua_setfield(L, -2, to_luastring(key));
    }
  }
}
