; A small installer that calls OmniClaw's NSIS hooks where the installer
; `tauri bundle` writes calls them: NSIS_HOOK_POSTINSTALL at the end of the
; install section (the app's files in $INSTDIR), NSIS_HOOK_POSTUNINSTALL at
; the end of the uninstall section, with $UpdateMode set by /UPDATE. Tauri's
; own template needs its plugins, which only come with its download of
; NSIS; this one builds with Debian's makensis and runs under Wine.
;
; makensis -DOUT=setup.exe -DHOOKS=hooks.nsh -DOMNICLAW_CLI=omniclaw.exe installer.nsi
Unicode true
Target amd64-unicode
Name "OmniClaw"
OutFile "${OUT}"
InstallDir "$LOCALAPPDATA\OmniClaw"
RequestExecutionLevel user
SetCompressor zlib

!include LogicLib.nsh
!include FileFunc.nsh

Var UpdateMode

!include "${HOOKS}"

Function .onInit
  StrCpy $UpdateMode 0
FunctionEnd

Section Install
  SetOutPath $INSTDIR
  WriteUninstaller "$INSTDIR\uninstall.exe"
  !ifmacrodef NSIS_HOOK_POSTINSTALL
    !insertmacro NSIS_HOOK_POSTINSTALL
  !endif
SectionEnd

Function un.onInit
  StrCpy $UpdateMode 0
  ${GetOptions} $CMDLINE "/UPDATE" $R0
  ${IfNot} ${Errors}
    StrCpy $UpdateMode 1
  ${EndIf}
FunctionEnd

Section Uninstall
  !ifmacrodef NSIS_HOOK_PREUNINSTALL
    !insertmacro NSIS_HOOK_PREUNINSTALL
  !endif
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  !ifmacrodef NSIS_HOOK_POSTUNINSTALL
    !insertmacro NSIS_HOOK_POSTUNINSTALL
  !endif
SectionEnd
