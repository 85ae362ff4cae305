; OmniClaw's hooks into the NSIS installer that `tauri bundle` writes
; (src-tauri/tauri.windows.conf.json: bundle > windows > nsis >
; installerHooks). They install the `omniclaw` CLI beside the app, put
; that folder on the user's PATH, take both off again on removal, and say
; what the user set up is left.
;
; The CLI is taken from where scripts/package.sh stages it (or from
; OMNICLAW_CLI, defined on makensis' command line). It is not a bundle
; resource: every build of the app would then need a CLI built first, as
; the app's build script checks that each resource exists.
;
; The user's PATH is edited entry by entry: every other entry, its order,
; its case and the value's type (REG_EXPAND_SZ, so %VARIABLES% keep
; working) stay as they were. A PATH longer than NSIS can hold in one
; string (NSIS_MAX_STRLEN) is never written back, since it would be cut
; (NSIS reads it as nothing at all): the installer then says which folder
; to add by hand.
;
; Tested by tests/windows_installer.rs (makensis and Wine).

!include LogicLib.nsh
!include WinMessages.nsh

!define OMNICLAW_ENV_KEY "Environment"

!ifndef OMNICLAW_CLI
  !define OMNICLAW_CLI "${__FILEDIR__}\..\..\target\package\release\omniclaw.exe"
!endif

; Defines `${UN}OmniClawPathEdit`: reads HKCU\Environment\Path and rebuilds
; it without any entry naming $INSTDIR (with or without a trailing
; backslash, in any case). Out: $R9 the rebuilt PATH, $R8 "1" when $INSTDIR
; was in it, $R7 "1" when the PATH cannot be edited safely (too long for
; NSIS's strings, or not a string).
!macro OMNICLAW_PATH_EDIT UN
Function ${UN}OmniClawPathEdit
  Push $R0
  Push $R1
  Push $R2
  Push $R3
  Push $R4
  StrCpy $R9 ""
  StrCpy $R8 "0"
  StrCpy $R7 "0"
  ; Whether an entry was kept yet (an empty one counts).
  StrCpy $R4 "0"
  ClearErrors
  ReadRegStr $R0 HKCU "${OMNICLAW_ENV_KEY}" "Path"
  ${If} ${Errors}
    ; No PATH of the user's own, or one NSIS cannot read: longer than its
    ; strings (it reads as nothing) or not a string. Only the first may
    ; be written.
    StrCpy $R1 0
    find_value:
      ClearErrors
      EnumRegValue $R2 HKCU "${OMNICLAW_ENV_KEY}" $R1
      ${If} ${Errors}
      ${OrIf} $R2 == ""
        Goto done
      ${EndIf}
      ${If} $R2 == "Path"
        StrCpy $R7 "1"
        Goto done
      ${EndIf}
      IntOp $R1 $R1 + 1
      Goto find_value
  ${EndIf}
  ; A value at the length limit may have been cut on reading.
  StrLen $R1 $R0
  StrLen $R2 "$INSTDIR"
  IntOp $R1 $R1 + $R2
  IntOp $R1 $R1 + 2
  ${If} $R1 >= ${NSIS_MAX_STRLEN}
    StrCpy $R7 "1"
    Goto done
  ${EndIf}
  ${If} $R0 == ""
    Goto done
  ${EndIf}
  next_entry:
    ; $R1: the index of the next ';' (or the end) in the rest, $R0.
    StrCpy $R1 0
    find_end:
      StrCpy $R2 $R0 1 $R1
      StrCmp $R2 "" got_entry
      StrCmp $R2 ";" got_entry
      IntOp $R1 $R1 + 1
      Goto find_end
    got_entry:
    StrCpy $R3 $R0 $R1
    ; StrCmp ignores case, as Windows does in paths.
    ${If} $R3 == "$INSTDIR"
    ${OrIf} $R3 == "$INSTDIR\"
      StrCpy $R8 "1"
    ${ElseIf} $R4 == "1"
      StrCpy $R9 "$R9;$R3"
    ${Else}
      StrCpy $R9 $R3
      StrCpy $R4 "1"
    ${EndIf}
    ${If} $R2 == ""
      Goto done
    ${EndIf}
    IntOp $R1 $R1 + 1
    StrCpy $R0 $R0 "" $R1
    Goto next_entry
  done:
  Pop $R4
  Pop $R3
  Pop $R2
  Pop $R1
  Pop $R0
FunctionEnd
!macroend

!insertmacro OMNICLAW_PATH_EDIT ""
!insertmacro OMNICLAW_PATH_EDIT "un."

; Tells running programs (Explorer, new terminals) that the environment
; changed.
!macro OMNICLAW_ENV_CHANGED
  SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:${OMNICLAW_ENV_KEY}" /TIMEOUT=5000
!macroend

!macro NSIS_HOOK_POSTINSTALL
  SetOutPath $INSTDIR
  File "/oname=omniclaw.exe" "${OMNICLAW_CLI}"
  Call OmniClawPathEdit
  ${If} $R7 == "1"
    DetailPrint "Your PATH is longer than the installer can read (or not text), so it was left as it is: add $INSTDIR to it yourself to run omniclaw from any terminal."
  ${ElseIf} $R8 == "1"
    DetailPrint "$INSTDIR is already on your PATH: omniclaw runs from any new terminal."
  ${Else}
    ${If} $R9 == ""
      StrCpy $R9 "$INSTDIR"
    ${Else}
      StrCpy $R9 "$R9;$INSTDIR"
    ${EndIf}
    WriteRegExpandStr HKCU "${OMNICLAW_ENV_KEY}" "Path" $R9
    !insertmacro OMNICLAW_ENV_CHANGED
    DetailPrint "Added $INSTDIR to your PATH: omniclaw runs from any new terminal."
  ${EndIf}
!macroend

!macro NSIS_HOOK_POSTUNINSTALL
  ; After the app's files: a CLI left by a failed delete (a gateway still
  ; running from it) does not keep the app from being removed.
  Delete "$INSTDIR\omniclaw.exe"
  RMDir "$INSTDIR"
  ; An update uninstalls the old version first (/UPDATE): the folder stays
  ; on the PATH for the version about to be installed.
  ${If} $UpdateMode <> 1
    Call un.OmniClawPathEdit
    ${If} $R8 == "1"
      ${If} $R9 == ""
        DeleteRegValue HKCU "${OMNICLAW_ENV_KEY}" "Path"
      ${Else}
        WriteRegExpandStr HKCU "${OMNICLAW_ENV_KEY}" "Path" $R9
      ${EndIf}
      !insertmacro OMNICLAW_ENV_CHANGED
      DetailPrint "Removed $INSTDIR from your PATH."
    ${ElseIf} $R7 == "1"
      DetailPrint "Your PATH is longer than the uninstaller can read (or not text), so it was left as it is: remove $INSTDIR from it yourself."
    ${EndIf}
    ; What the user set up is theirs: it stays, and this says how to remove it.
    DetailPrint "OmniClaw was removed; what you set up with it was left in place:"
    DetailPrint "  profiles: %USERPROFILE%\.omniclaw and %USERPROFILE%\.omniclaw-* (config, state, sessions, workspaces)"
    DetailPrint "  secrets: Windows Credential Manager entries ending in .omniclaw"
    DetailPrint "  gateway services: the Task Scheduler tasks OmniClaw Gateway and OmniClaw Gateway (NAME), defined in %LOCALAPPDATA%\OmniClaw\services"
    DetailPrint "To remove them, either reinstall OmniClaw and run, for each profile (see omniclaw status):"
    DetailPrint "  omniclaw --profile NAME remove"
    DetailPrint "or, without it:"
    DetailPrint '  schtasks /Delete /TN "OmniClaw Gateway (NAME)" /F'
    DetailPrint "  cmdkey /list  (then cmdkey /delete:TARGET for each target ending in .omniclaw)"
    DetailPrint '  rmdir /s "%LOCALAPPDATA%\OmniClaw\services" and each %USERPROFILE%\.omniclaw* folder'
  ${EndIf}
!macroend
