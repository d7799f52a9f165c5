// The plugin uses JupyterLab's tokens at run time from the host page (shared singletons that
// @jupyterlab/builder does not bundle); these packages are not installed here, to keep the npm
// tree small, so their types are declared loosely for `make typecheck`.
declare module '@jupyterlab/apputils' {
  export const ICommandPalette: unknown;
}
declare module '@jupyterlab/application' {
  export const ILabShell: unknown;
}
declare module '@jupyterlab/settingregistry' {
  export const ISettingRegistry: unknown;
}
